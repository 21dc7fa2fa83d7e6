"""Both families in tools.report and tools.compare: the one-axis columns (family, models trained,
clean accuracy, realised attack certified on the clean and triggered sets, the median any-k count,
training seconds, ac@k), means over seeds, the k-axis overlay, and compare's notion of the method
for count runs. Summaries are written by the tests (the layout of a real run's summary.json); the
slow test makes real tiny runs of both families."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from certssb.logger.flatten import summary_scalars
from certssb.tools import compare
from certssb.tools import report as report_mod
from certssb.tools.one_axis import attack_changed, one_axis_row
from certssb.tools.one_axis_plot import KCurve, curve_style, natural_key, overlay_any_count, x_limit
from certssb.tools.report import collect_runs, wandb_runs
from certssb.tools.report.wandb_runs import summary_from_scalars
from certssb.tools.seeds import mean_std_cell

COUNTS = [0, 1, 2, 5, 10, 20, 50]


def _count_split(acc: float, rac: float, median: int | None, changed: int = 7) -> dict:
    return {"accuracy": acc, "abstain_rate": 0.0, "certified_ratio": 0.9, "realised_attack_certified": rac,
            "any_count_median": median, "attack_changed_samples": changed}


def count_summary(seed: int, parts: int, method: str = "dpa", train_s: float = 2.0, ca=None, changed: int = 7) -> dict:
    """A count-family summary.json as the pipeline writes it (no radius curves)."""
    ca = ca if ca is not None else [0.9, 0.85, 0.8, 0.6, 0.1 * seed, 0.0, 0.0]
    return {
        "status": "complete", "method": method, "family": "count", "seed": seed, "n_members": parts,
        "sigma_0": None, "alpha": None, "certifier": {"name": method, "alpha_per_bound": None},
        "ensemble": {"name": "partition", "n_parts": parts, "family": "count"},
        "dataset": {"name": "digits"}, "attack": {"name": "badnets", "n_poisoned": changed, "relabels": True},
        "sigma": {"train_min": 0.0, "test_clean": {"median": 0.0}},
        "metrics": {"clean_accuracy": 0.9 - seed / 100, "asr": 0.02, "undefended_clean_accuracy": 0.98,
                    "undefended_asr": 0.84, "attack_joint_l2": 7.0,
                    "clean": _count_split(0.9 - seed / 100, 0.5 + seed / 10, 6 + seed, changed),
                    "triggered": _count_split(0.5, 0.1 + seed / 10, 4, changed),
                    "triggered_all": _count_split(0.1, 0.03, 5, changed)},
        "curves": {s: {"any_count": {"counts": COUNTS, "certified_accuracy": ca}}
                   for s in ("clean", "triggered", "triggered_all")},
        "timings": {"sigma_s": 0.0, "train_s": train_s + seed, "total_s": train_s + seed + 5},
    }


def gaussian_summary(seed: int, n: int = 10, method: str = "rab") -> dict:
    """A Gaussian-family summary.json: radius curves, and the k axis (certified at k = 0 only)."""
    curve = {"radii": [0.0, 0.5], "certified_accuracy": {"joint": [0.8, 0.4], "paper": [0.8, 0.4]},
             "any_count": {"counts": COUNTS, "certified_accuracy": [0.7] + [0.0] * 6}}
    split = {"accuracy": 0.85, "acr": 0.3, "acr_by_variant": {"joint": 0.3, "paper": 0.3},
             "covered_fraction": {"exact": 0.0}, "realised_attack_certified": 0.0, "any_count_median": 0,
             "attack_changed_samples": 7}
    return {"status": "complete", "method": method, "family": "gaussian", "seed": seed, "n_members": n,
            "sigma_0": 0.25, "alpha": 0.001, "certifier": {"name": "storage_update", "mode": "hard"},
            "dataset": {"name": "digits"}, "attack": {"name": "badnets"},
            "sigma": {"train_min": 0.25, "test_clean": {"median": 0.25}},
            "metrics": {"clean_accuracy": 0.85, "asr": 0.01, "clean": split, "triggered": dict(split, accuracy=0.5)},
            "curves": {"clean": curve, "triggered": curve},
            "timings": {"sigma_s": 0.0, "train_s": 3.0, "total_s": 6.0}}


def _job(sweep: Path, num: int, overrides: list[str], summary: dict) -> Path:
    d = sweep / str(num)
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (d / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": summary["seed"]}))
    (d / "summary.json").write_text(json.dumps(summary))
    return d


@pytest.fixture
def mixed_sweep(tmp_path: Path) -> Path:
    """DPA at 20 and 50 parts (seeds 0, 1) and RAB (seeds 0, 1)."""
    s = tmp_path / "sweep"
    s.mkdir()
    (s / "multirun.yaml").write_text("hydra: {}\n")
    jobs = [(["method=dpa20", "seed=0"], count_summary(0, 20)), (["method=dpa20", "seed=1"], count_summary(1, 20)),
            (["method=dpa50", "seed=0"], count_summary(0, 50, train_s=4.0)),
            (["method=dpa50", "seed=1"], count_summary(1, 50, train_s=4.0)),
            (["method=rab", "seed=0"], gaussian_summary(0)), (["method=rab", "seed=1"], gaussian_summary(1))]
    for i, (ov, summary) in enumerate(jobs):
        _job(s, i, ov, summary)
    return s


# ------------------------------------------------------------------------------------ readings


def test_one_axis_row_reads_both_families():
    row = one_axis_row(count_summary(1, 20), "triggered")
    assert row == {"family": "count", "n_members": 20, "clean_accuracy": 0.89, "realised_attack_certified_clean": 0.6,
                   "realised_attack_certified_triggered": 0.2, "any_count_median": 4, "train_s": 3.0}
    old = gaussian_summary(0)
    del old["family"]  # written before the count family: Gaussian
    assert one_axis_row(old)["family"] == "gaussian"
    assert attack_changed(count_summary(0, 20, changed=11)) == 11 and attack_changed({}) is None


# ------------------------------------------------------------------------------------ report


def test_report_table_has_the_one_axis_columns(mixed_sweep):
    df, missing = collect_runs([mixed_sweep])
    assert missing == [] and len(df) == 6
    assert df["family"].tolist() == ["count"] * 4 + ["gaussian"] * 2
    assert df["n_members"].tolist() == [20, 20, 50, 50, 10, 10]
    assert df["realised_attack_certified_clean"].tolist() == pytest.approx([0.5, 0.6, 0.5, 0.6, 0.0, 0.0])
    assert df["realised_attack_certified_triggered"].tolist() == pytest.approx([0.1, 0.2, 0.1, 0.2, 0.0, 0.0])
    assert df["any_count_median"].tolist() == [6, 7, 6, 7, 0, 0]
    assert df["train_s"].tolist() == pytest.approx([2, 3, 4, 5, 3, 3])
    assert df["clean_accuracy"].tolist() == pytest.approx([0.9, 0.89, 0.9, 0.89, 0.85, 0.85])
    assert [f"ac@{k}" for k in COUNTS] == [c for c in df.columns if c.startswith("ac@")]
    assert df["ac@10"].tolist() == pytest.approx([0.0, 0.1, 0.0, 0.1, 0.0, 0.0])
    assert df["ca@0.5"].isna().tolist() == [True] * 4 + [False] * 2  # count runs certify no radius
    assert set(df.attrs["curves"]) == set(df["run_dir"][4:])  # the radius overlay: Gaussian runs only
    assert len(df.attrs["any_curves"]) == 6 and set(df.attrs["changed"].values()) == {7}


def test_report_files_seeds_and_figures(mixed_sweep, tmp_path, capsys):
    out = tmp_path / "rep"
    assert report_mod.main([str(mixed_sweep), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    seeds = pd.read_csv(out / "seeds.csv")
    assert seeds["method"].tolist() == ["dpa20", "dpa50", "rab"]
    assert seeds["family"].tolist() == ["count", "count", "gaussian"]
    dpa = seeds.iloc[0]
    assert dpa["realised_attack_certified_clean_mean"] == pytest.approx(0.55)
    assert dpa["realised_attack_certified_clean_std"] == pytest.approx(0.1 / 2 ** 0.5)
    assert dpa["any_count_median_mean"] == pytest.approx(6.5) and dpa["train_s_mean"] == pytest.approx(2.5)
    assert dpa["n_members_mean"] == 20 and dpa["n_members_std"] == 0
    assert dpa["ac@10_mean"] == pytest.approx(0.05)
    md = (out / "report.md").read_text()
    assert "## Every family on one axis" in md and "7 training samples changed" in md
    assert ("| run_dir | method | seed | family | n_members | clean_accuracy | realised_attack_certified_clean | "
            "realised_attack_certified_triggered | any_count_median | train_s |") in md
    assert "| 0 | dpa20 | 0 | count | 20 | 0.9 | 0.5 | 0.1 | 6 | 2 |" in md
    assert "4 count-family run(s) certify no L2 radius" in md
    # mean ± std over seeds of the models, clean accuracy and the realised attack certified
    assert "| dpa20 | 2 | count | 20 | 0.895 ± 0.007 | 0.550 ± 0.071 | 0.150 ± 0.071 |" in md
    assert "| dpa20 | 2 |  |" not in md  # no empty row for a count group in the radius table
    assert "![certified accuracy against any k changed training samples](any_count_clean.png)" in md
    for png in ("any_count_clean.png", "curves_clean_joint.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_of_count_runs_only_warns_about_no_radius(tmp_path, capsys):
    s = tmp_path / "sweep"
    _job(s, 0, ["seed=0"], count_summary(0, 20))
    _job(s, 1, ["seed=1"], count_summary(1, 20))
    assert report_mod.main([str(s), "--out", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().err == ""  # no "no run has a curve": count runs have none by design
    assert not (tmp_path / "r" / "curves_clean_joint.png").exists()
    assert (tmp_path / "r" / "any_count_clean.png").stat().st_size > 1000


# ------------------------------------------------------------------------------------ overlay


def test_overlay_legend_in_natural_order_and_axis_until_every_curve_is_zero(tmp_path):
    curves = [KCurve("dpa (n_parts=100)", COUNTS, [0.9, 0.9, 0.9, 0.8, 0.7, 0.5, 0.0]),
              KCurve("dpa (n_parts=20)", COUNTS, [0.9, 0.8, 0.7, 0.3, 0.0, 0.0, 0.0]),
              KCurve("rab", COUNTS, [0.7, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], family="gaussian"),
              KCurve("dpa (n_parts=5)", COUNTS, [0.8, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0])]
    assert x_limit(curves) == 50  # where the last curve (100 parts) reaches 0
    assert x_limit(curves[2:3]) == 1 and x_limit([KCurve("never", [0, 1, 2], [0.5, 0.4, 0.3])]) == 2
    path = tmp_path / "k.png"
    legend = overlay_any_count(curves, path, "t", changed=[7, 7])
    assert legend == ["dpa (n_parts=5) (count)", "dpa (n_parts=20) (count)", "dpa (n_parts=100) (count)",
                      "rab (gaussian)", "the attack changed 7 training samples"]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert overlay_any_count([], tmp_path / "none.png", "t") == [] and not (tmp_path / "none.png").exists()
    assert sorted(["p=10", "p=9", "p=100"], key=natural_key) == ["p=9", "p=10", "p=100"]


def test_overlay_draws_identical_curves_once_and_names_them_together(tmp_path):
    same = [0.9, 0.9, 0.8, 0.6, 0.3, 0.0, 0.0]
    curves = [KCurve("roe_p100", COUNTS, list(same)), KCurve("dpa_p100", COUNTS, list(same)),
              KCurve("dpa_p50", COUNTS, [0.9, 0.8, 0.7, 0.3, 0.0, 0.0, 0.0]),
              KCurve("gauss", COUNTS, list(same), family="gaussian")]  # same values, other family: its own line
    legend = overlay_any_count(curves, tmp_path / "k.png", "t")
    assert legend == ["dpa_p50 (count)", "dpa_p100 = roe_p100 (count, identical curves)", "gauss (gaussian)"]
    near = overlay_any_count(curves[:2] + [KCurve("dpa_p100b", COUNTS, same[:-1] + [0.01])], tmp_path / "n.png", "t")
    assert near == ["dpa_p100 = roe_p100 (count, identical curves)", "dpa_p100b (count)"]  # one point apart: two lines


def test_mean_std_cells():
    assert mean_std_cell(0.5123, 0.0131) == "0.512 ± 0.013"
    assert mean_std_cell(200.0, 0.0) == "200"  # a model count, the same over every seed
    assert mean_std_cell(1.0, 0.0) == "1.000 ± 0.000"  # a share of 1 stays a share
    assert mean_std_cell(12.5, 0.0) == "12.500 ± 0.000" and mean_std_cell(0.4, float("nan")) == "0.400"
    assert mean_std_cell(float("nan"), 0.1) == "" and mean_std_cell(None, None) == ""


def test_overlay_styles_tell_twenty_curves_apart():
    styles = [curve_style(n) for n in range(20)]
    assert len({colour for colour, _ in styles[:10]}) == 10  # the first ten: ten different hues
    assert len(set(styles)) == 20  # colour and marker together: no two of twenty alike
    assert styles[10][1] != styles[0][1]  # the 11th shares a hue family with the 1st, not its marker


# ------------------------------------------------------------------------------------ compare


def _run(root: Path, name: str, summary: dict, config: dict, choices: dict, overrides: list[str] = ()) -> Path:
    d = root / name
    (d / ".hydra").mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps(summary))
    (d / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (d / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))
    return d


def _dpa(root: Path, name: str, parts: int = 20, epochs: int = 30, dataset: str = "digits", seed: int = 0) -> Path:
    summary = count_summary(seed, parts)
    summary["dataset"]["name"] = dataset
    config = {"seed": seed, "dataset": {"name": dataset}, "attack": {"name": "badnets", "poison_rate": 0.005},
              "ensemble": {"name": "partition", "n_parts": parts, "key": "index", "epochs": epochs, "batch_size": 16,
                           "lr": 0.001, "device": "auto"},
              "certifier": {"name": "dpa"}, "sigma_optimiser": {"name": "none"}}
    return _run(root, name, summary, config, {"ensemble": "partition", "certifier": "dpa", "sigma_optimiser": "none"},
                [f"ensemble.n_parts={parts}", f"ensemble.epochs={epochs}"])


def _rab(root: Path, name: str, n: int = 10) -> Path:
    config = {"seed": 0, "dataset": {"name": "digits"}, "attack": {"name": "badnets", "poison_rate": 0.005},
              "ensemble": {"name": "gaussian", "n_members": n, "epochs": 3, "batch_size": 128, "lr": 0.001,
                           "device": "auto"},
              "certifier": {"name": "storage_update", "alpha": 0.001, "mode": "hard"},
              "sigma_optimiser": {"name": "fixed", "sigma_0": 0.25}}
    return _run(root, name, gaussian_summary(0, n), config,
                {"ensemble": "gaussian", "certifier": "storage_update", "sigma_optimiser": "fixed"})


def test_compare_dpa_with_rab_notes_what_differs_between_the_families(tmp_path, capsys):
    fig = tmp_path / "k.png"
    assert compare.main([str(_dpa(tmp_path, "dpa")), str(_rab(tmp_path, "rab")), "--split", "clean",
                         "--figure", str(fig)]) == 0
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("note: these runs differ only in their methods and in what differs by design between "
                           "the families count / gaussian: N (20 / 10), ")
    assert "ensemble.epochs (30 / 3)" in line and "warning" not in line
    out = captured.out
    assert "| run | ACR clean (joint, sound) |" in out  # the Gaussian headline table: the RAB run only
    assert "Every family on one axis (the attack changed 7 training samples):" in out
    assert "| count | 20 | 2.0 | 0.900 | 0.500 | 0.100 | 6 |" in out
    assert "| gaussian | 10 | 3.0 | 0.850 | 0.000 | 0.000 | 0 |" in out
    assert "(1 count-family run(s) left out: they certify no radius)" in out
    assert "| 5 | 0.600 | 0.000 |" in out  # the any-k table: one column per run
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_across_families_still_warns_about_what_matters(tmp_path, capsys):
    assert compare.main([str(_dpa(tmp_path, "dpa", dataset="mnist")), str(_rab(tmp_path, "rab")), "--split",
                         "clean"]) == 0
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("warning: these runs differ in more than the method: dataset (mnist / digits); ")
    assert "(expected: what differs by design between the families count / gaussian: N (20 / 10)" in line


def test_compare_count_runs_the_method_is_the_ensemble_and_certifier(tmp_path, capsys):
    runs = [str(_dpa(tmp_path, "p20", parts=20)), str(_dpa(tmp_path, "p50", parts=50))]
    assert compare.main(runs + ["--split", "clean"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # n_parts is DPA's own setting: the method
    assert "| dpa (N=20, ensemble.n_parts=20) |" in captured.out
    assert "ACR clean" not in captured.out  # no Gaussian run: no Gaussian headline table
    runs = [str(_dpa(tmp_path, "e30", epochs=30)), str(_dpa(tmp_path, "e60", epochs=60))]
    assert compare.main(runs + ["--split", "clean"]) == 0
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("warning: these runs differ in more than the method: ensemble.epochs (30 / 60)")
    assert "expected" not in line  # one family: nothing differs by design


def test_compare_bad_split_is_one_line(tmp_path, capsys):
    assert compare.main([str(_dpa(tmp_path, "dpa")), "--split", "clean,nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --split 'clean,nope': choose among clean, triggered, triggered_all") and \
        err.count("\n") == 1


# ------------------------------------------------------------------------------------ W&B


class _Api:
    def __init__(self, runs):
        self._runs = runs

    def runs(self, path, filters=None):
        return self._runs


def test_wandb_count_runs_give_the_local_table(tmp_path, monkeypatch):
    cases = [(["seed=0"], count_summary(0, 20)), (["seed=1"], count_summary(1, 20))]
    sweep = tmp_path / "sweep"
    for i, (ov, s) in enumerate(cases):
        _job(sweep, i, ov, s)
    back = summary_from_scalars(summary_scalars(cases[0][1]), {"method": "dpa", "seed": 0})
    assert back["family"] == "count"
    assert back["curves"]["clean"]["any_count"] == cases[0][1]["curves"]["clean"]["any_count"]
    runs = [SimpleNamespace(id=f"id{i}", name=",".join(ov), state="finished", summary=summary_scalars(s),
                            config={"seed": s["seed"], "method": s["method"], "overrides": ov})
            for i, (ov, s) in enumerate(cases)]
    monkeypatch.setattr(wandb_runs, "wandb_api", lambda: _Api(runs))
    assert report_mod.main(["--wandb", "ent/proj", "--out", str(tmp_path / "wb")]) == 0
    assert report_mod.main([str(sweep), "--out", str(tmp_path / "local")]) == 0
    wb, local = pd.read_csv(tmp_path / "wb" / "report.csv"), pd.read_csv(tmp_path / "local" / "report.csv")
    assert list(wb.columns) == list(local.columns)
    numeric = [c for c in local.columns if c not in ("run_dir", "status", "method")]
    pd.testing.assert_frame_equal(wb[numeric], local[numeric], check_exact=False, rtol=1e-12)


# ------------------------------------------------------------------------------------ real runs


@pytest.mark.slow
def test_real_tiny_runs_of_both_families(tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled"}
    common = ["dataset.test_size=60", "undefended.enabled=false", "attack.poison_rate=0.005"]
    jobs = {"dpa": ["ensemble=partition", "ensemble.n_parts=10", "ensemble.epochs=5", "ensemble.batch_size=16"],
            "rab": ["sigma_optimiser=fixed", "ensemble.n_members=4", "ensemble.epochs=1"]}
    for name, extra in jobs.items():
        proc = subprocess.run([sys.executable, "-m", "certssb.run", *common, *extra,
                               f"hydra.run.dir={tmp_path / 'runs' / name}"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
    df, missing = collect_runs([tmp_path / "runs"])
    assert missing == [] and df["family"].tolist() == ["count", "gaussian"]
    for run_dir, row in zip(df["run_dir"], df.to_dict("records")):
        s = json.loads((Path(run_dir) / "summary.json").read_text())
        assert row["n_members"] == s["n_members"] and row["train_s"] == s["timings"]["train_s"]
        assert row["realised_attack_certified_triggered"] == s["metrics"]["triggered"]["realised_attack_certified"]
        assert row["ac@0"] == s["curves"]["clean"]["any_count"]["certified_accuracy"][0]
    assert df["n_members"].tolist() == [10, 4]
    proc = subprocess.run([sys.executable, "-m", "certssb.tools.compare", str(tmp_path / "runs" / "dpa"),
                           str(tmp_path / "runs" / "rab"), "--figure", str(tmp_path / "k.png")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("note: ") and "N (10 / 4)" in line
    assert "Every family on one axis" in proc.stdout and (tmp_path / "k.png").is_file()
