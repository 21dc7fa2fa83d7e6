"""report --wandb: runs from a fake ``wandb.Api`` (recorded-style objects with ``.summary``,
``.config``, ``.name``, ``.group``, ``.state``) give the same table as the local run dirs."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from certssb.logger.flatten import radius_key, summary_scalars
from certssb.tools import report as report_mod
from certssb.tools.report import wandb_runs
from certssb.tools.report.wandb_runs import parse_radius_key, summary_from_scalars
from tests.test_report import _job, _summary


class FakeApi:
    """What ``wandb.Api().runs(path, filters)`` returns, recorded as plain objects."""

    def __init__(self, runs):
        self._runs, self.calls = runs, []

    def runs(self, path, filters=None):
        self.calls.append((path, filters))
        group = (filters or {}).get("group")
        return [r for r in self._runs if group is None or r.group == group]


def _run(i, overrides, summary, group="delta 2026-11-28/10-00-00", state="finished"):
    config = {"seed": summary["seed"], "method": summary["method"], "overrides": overrides,
              "attack": {"name": "badnets", "delta": 1.0}}
    return SimpleNamespace(id=f"id{i}", name=",".join(overrides), group=group, state=state,
                           summary=summary_scalars(summary), config=config)


def test_radius_keys_round_trip():
    for r in (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 1e-05, 12.75):
        assert parse_radius_key(radius_key(r)) == pytest.approx(r, rel=1e-12)
    assert parse_radius_key("joint") is None


def test_summary_rebuilt_from_scalars_has_the_curves():
    s = _summary(1, 0.5)
    back = summary_from_scalars(summary_scalars(s), {"method": "cert-ssb", "seed": 1})
    for split in s["curves"]:
        assert back["curves"][split]["radii"] == s["curves"][split]["radii"]
        assert back["curves"][split]["certified_accuracy"] == s["curves"][split]["certified_accuracy"]
    assert back["metrics"]["clean"]["acr"]["joint"] == s["metrics"]["clean"]["acr"]["joint"]


def test_wandb_report_equals_the_local_report(tmp_path, monkeypatch):
    cases = [(["attack.delta=0.5", "seed=0"], _summary(0, 0.5)), (["attack.delta=1.0", "seed=0"], _summary(0, 1.0)),
             (["attack.delta=0.5", "seed=1"], _summary(1, 0.5))]
    sweep = tmp_path / "sweep"
    for i, (ov, s) in enumerate(cases):
        _job(sweep, i, ov, s)
    runs = [_run(i, ov, s) for i, (ov, s) in enumerate(cases)]
    runs.append(_run(9, ["attack.delta=2.0", "seed=0"], _summary(0, 2.0), state="crashed"))
    runs.append(_run(8, ["attack.delta=0.5"], _summary(0, 0.5), group="other"))
    api = FakeApi(runs)
    monkeypatch.setattr(wandb_runs, "wandb_api", lambda: api)
    out = tmp_path / "wb"
    assert report_mod.main(["--wandb", "ent/proj", "--group", "delta 2026-11-28/10-00-00", "--out", str(out)]) == 0
    assert api.calls == [("ent/proj", {"group": "delta 2026-11-28/10-00-00"})]
    assert report_mod.main([str(sweep), "--out", str(tmp_path / "local")]) == 0
    wb = pd.read_csv(out / "report.csv")
    local = pd.read_csv(tmp_path / "local" / "report.csv")
    assert list(wb.columns) == list(local.columns)
    numeric = [c for c in local.columns if c not in ("run_dir", "status", "method")]
    # same numbers through two paths (JSON files vs W&B scalars): equal up to float printing
    pd.testing.assert_frame_equal(wb[numeric], local[numeric], check_exact=False, rtol=1e-12)
    assert wb["run_dir"].tolist()[0] == "attack.delta=0.5,seed=0 (id0)"
    missing = pd.read_csv(out / "missing.csv")
    assert missing["status"].tolist() == ["crashed"] and missing["attack.delta"].tolist() == [2.0]
    md = (out / "report.md").read_text()
    assert "wandb:ent/proj group delta 2026-11-28/10-00-00" in md and "![certified accuracy]" in md
    assert (out / "curves_clean_joint.png").stat().st_size > 1000


def test_wandb_argument_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(wandb_runs, "wandb_api", lambda: FakeApi([]))
    assert report_mod.main(["--wandb", "ent/proj", "--group", "g", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: no W&B runs in ent/proj with group 'g'"
    assert report_mod.main(["--wandb", "proj"]) == 2
    assert "use ENTITY/PROJECT" in capsys.readouterr().err
    assert report_mod.main(["--group", "g", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: --group needs --wandb ENTITY/PROJECT"
