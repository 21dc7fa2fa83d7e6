"""certssb.tools.report: tables, Markdown, plots and the missing list from fake sweep directories."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from certssb.tools.report import collect_runs, main, parse_overrides

RADII = [0.0, 0.25, 0.5]


def _summary(seed: int, delta: float, status: str = "complete", memory: bool = True) -> dict:
    base = 0.9 - 0.1 * delta - 0.01 * seed
    ca = {
        "joint": [base, base - 0.2, base - 0.4],
        "paper": [base, base - 0.1, base - 0.2],
        "budget": [base, base - 0.3, base - 0.5],
    }
    if memory:
        ca["joint_memory"] = [base, base - 0.25, base - 0.45]
    split = {
        "accuracy": base,
        "certified_ratio": 0.8,
        "conditional_accuracy": 0.95,
        "acr": {"joint": 0.3 + seed / 100, "paper": 0.4},
        "abstain_rate": 0.05,
    }
    trig_ca = {k: [v - 0.3 for v in vals] for k, vals in ca.items()}
    return {
        "status": status,
        "method": "cert-ssb",
        "seed": seed,
        "n_members": 8,
        "alpha": 0.001,
        "metrics": {
            "clean_accuracy": base,
            "asr": 0.1 + delta / 10,
            "undefended_clean_accuracy": 0.95,
            "undefended_asr": 0.99,
            "attack_joint_l2": 3.2,
            "clean": split,
            "triggered": dict(split, accuracy=base - 0.3),
        },
        "curves": {
            "clean": {"radii": RADII, "certified_accuracy": ca},
            "triggered": {"radii": RADII, "certified_accuracy": trig_ca},
            "triggered_all": {"radii": RADII, "certified_accuracy": trig_ca},
        },
        "timings": {"total_s": 12.5 + seed},
    }


def _job(sweep: Path, num: int, overrides: list[str], summary: dict | None) -> Path:
    d = sweep / str(num)
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (d / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": 0, "attack": {"name": "badnets", "delta": 1.0}}))
    if summary is not None:
        (d / "summary.json").write_text(json.dumps(summary))
    return d


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    s = tmp_path / "multirun" / "2026-01-01" / "12-00-00"
    s.mkdir(parents=True)
    (s / "multirun.yaml").write_text("hydra: {}\n")
    _job(s, 0, ["seed=0", "attack.delta=1.0"], _summary(0, 1.0))
    _job(s, 1, ["seed=1", "attack.delta=1.0"], _summary(1, 1.0, memory=False))  # like RAB: no *_memory
    _job(s, 2, ["seed=0", "attack.delta=2.0"], _summary(0, 2.0))
    _job(s, 3, ["seed=1", "attack.delta=2.0"], None)  # still running / crashed
    _job(s, 4, ["seed=2", "attack.delta=2.0"], _summary(2, 2.0, status="failed"))
    (s / "5").mkdir()  # a job dir Hydra never set up
    (s / ".submitit" / "123").mkdir(parents=True)  # must be ignored
    return s


def test_parse_overrides():
    assert parse_overrides(["+a.b=1", "++c=0.5", "model=mlp", "~x", "flag=true", "l=[1,2]", "n=null"]) == {
        "a.b": 1,
        "c": 0.5,
        "model": "mlp",
        "x": "<deleted>",
        "flag": True,
        "l": "[1,2]",
        "n": None,
    }


def test_collect_runs(sweep):
    df, missing = collect_runs([sweep])
    assert len(df) == 3
    assert [Path(r).name for r in df["run_dir"]] == ["0", "1", "2"]
    assert df.attrs["params"] == ["seed", "attack.delta"]
    assert list(df.columns[:4]) == ["run_dir", "status", "method", "n_members"]
    assert {"seed", "attack.delta", "ca@0", "ca@0.25", "ca@0.5", "acr", "asr", "total_s"} <= set(df.columns)
    assert df["attack.delta"].tolist() == [1.0, 1.0, 2.0]
    assert df["ca@0.25"].tolist() == pytest.approx([0.6, 0.59, 0.5])
    assert df["acr"].tolist() == pytest.approx([0.30, 0.31, 0.30])
    reasons = {Path(m["run_dir"]).name: m["reason"] for m in missing}
    assert reasons == {"3": "no summary.json", "4": "status=failed", "5": "job never started (no .hydra/)"}
    assert [m.get("seed") for m in missing[:2]] == [1, 2]


def test_collect_runs_other_split_and_variant(sweep):
    df, _ = collect_runs([sweep], split="triggered", variant="joint_memory")
    assert df["ca@0"].tolist()[0] == pytest.approx(0.8 - 0.3)
    assert pd.isna(df["ca@0"].tolist()[1])  # the run without *_memory curves
    assert df["acr"].isna().all()  # no joint_memory ACR in these summaries
    assert set(df.attrs["curves"]) == {df["run_dir"][0], df["run_dir"][2]}


def test_main_writes_csv_markdown_png_missing(sweep, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main([str(sweep), "--out", str(out)]) == 0
    assert "3 complete run(s), 3 missing or failed" in capsys.readouterr().out

    csv = pd.read_csv(out / "report.csv")
    assert len(csv) == 3
    assert {"run_dir", "status", "seed", "attack.delta", "ca@0", "ca@0.25", "ca@0.5", "acr",
            "clean_accuracy", "asr", "undefended_asr", "total_s"} <= set(csv.columns)
    assert (csv["status"] == "complete").all()
    assert csv["seed"].tolist() == [0, 1, 0]
    assert csv["ca@0.5"].tolist() == pytest.approx([0.4, 0.39, 0.3])
    assert csv["asr"].tolist() == pytest.approx([0.2, 0.2, 0.3])
    assert csv["undefended_asr"].tolist() == pytest.approx([0.99] * 3)
    assert csv["total_s"].tolist() == pytest.approx([12.5, 13.5, 12.5])

    miss = pd.read_csv(out / "missing.csv")
    assert [Path(p).name for p in miss["run_dir"]] == ["3", "4", "5"]
    assert miss["reason"].tolist()[:2] == ["no summary.json", "status=failed"]

    md = (out / "report.md").read_text()
    assert "## Missing or failed" in md and "no summary.json" in md and "status=failed" in md
    assert "| run_dir | method | seed | attack.delta | ca@0 | ca@0.25 | ca@0.5 |" in md
    assert "| 0 | cert-ssb | 0 | 1 | 0.8 | 0.6 | 0.4 | 0.3 |" in md  # job 0: run dir shown relative to the sweep
    assert "| 4 | failed | status=failed | 2 | 2 |" in md
    assert "plot grouped by: `seed`" in md  # the first swept parameter that varies
    assert "curves_clean_joint.png" in md

    png = out / "curves_clean_joint.png"
    assert png.is_file() and png.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_main_group_by_split_variant(sweep, tmp_path):
    out = tmp_path / "rep2"
    argv = [str(sweep), "--out", str(out), "--split", "triggered", "--variant", "paper", "--group-by", "attack.delta"]
    assert main(argv) == 0
    assert (out / "curves_triggered_paper.png").stat().st_size > 1000
    assert "plot grouped by: `attack.delta`" in (out / "report.md").read_text()
    csv = pd.read_csv(out / "report.csv")
    assert csv["ca@0.25"].tolist() == pytest.approx([0.4, 0.39, 0.3])


def test_single_run_dir_defaults_out_to_it(sweep):
    run = sweep / "0"
    assert main([str(run)]) == 0
    csv = pd.read_csv(run / "report.csv")
    assert len(csv) == 1 and (run / "report.md").is_file() and (run / "missing.csv").is_file()


def test_bad_group_by_is_one_line_error(sweep, tmp_path, capsys):
    assert main([str(sweep), "--out", str(tmp_path / "r"), "--group-by", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.parametrize("make", ["empty", "absent"])
def test_no_runs_exits_2_with_one_line(tmp_path, capsys, make):
    target = tmp_path / "nothing"
    if make == "empty":
        (target / "sub").mkdir(parents=True)
    assert main([str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (target / "report.csv").exists()


def test_cli_module_entry_point(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "certssb.tools.report", str(tmp_path / "void")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr


def _current_layout(summary: dict) -> dict:
    """The summary layout of this version: ``acr`` the sound scalar, the variants beside it."""
    for name in ("clean", "triggered"):
        m = summary["metrics"][name]
        m["acr_by_variant"] = dict(m["acr"])
        m["acr"] = m["acr_by_variant"]["joint"]
        m["covered_fraction"] = {"exact": 0.5, "joint_l2_ball": 0.25}
    for curve in summary["curves"].values():
        curve["certified_accuracy"].pop("budget", None)
    return summary


def test_report_reads_the_sound_acr_and_the_exact_coverage(tmp_path):
    s = tmp_path / "sweep"
    s.mkdir()
    _job(s, 0, ["seed=0"], _current_layout(_summary(0, 1.0)))
    _job(s, 1, ["seed=1"], _current_layout(_summary(1, 1.0)))
    df, _ = collect_runs([s])
    assert df["acr"].tolist() == pytest.approx([0.30, 0.31])
    assert df["covered_exact"].tolist() == pytest.approx([0.5, 0.5])
    df, _ = collect_runs([s], variant="paper")
    assert df["acr"].tolist() == pytest.approx([0.4, 0.4])


def test_compare_leads_with_the_sound_acr(tmp_path, capsys):
    from certssb.tools.compare import main as compare_main

    runs = []
    for seed in (0, 1):
        summary = _current_layout(_summary(seed, 1.0))
        summary["sigma"] = {"train_min": 0.2, "test_clean": {"median": 0.5}}
        summary["sigma_0"] = 0.25
        summary["curves"]["clean"]["poison_count"] = {
            "eta": 1.0, "eps": 1.0, "counts": [0, 1, 2], "certified_accuracy": {"joint": [0.5, 0.4 - seed / 10, 0.1]}}
        d = tmp_path / f"run{seed}"
        d.mkdir()
        (d / "summary.json").write_text(json.dumps(summary))
        runs.append(str(d))
    assert compare_main(runs + ["--split", "clean"]) == 0
    out = capsys.readouterr().out
    head = next(line for line in out.splitlines() if line.startswith("| run |"))
    assert head.split("|")[2].strip() == "ACR clean (joint, sound)"
    assert "paper (test-time only)" in out and "budget" not in out
    assert "| 1 | 0.400 | 0.300 |" in out  # the poison-count table, one column per run


def _results_summary(seed: int, acr: float, ca: list[float], pc: list[float], train_s: float) -> dict:
    s = _summary(seed, 1.0)
    s["metrics"]["clean"]["acr"] = acr
    s["curves"]["clean"]["certified_accuracy"]["joint"] = ca
    s["curves"]["clean"]["poison_count"] = {
        "eta": 1.0, "eps": 1.0, "counts": [0, 1, 2],
        "certified_accuracy": {"joint": pc, "joint_memory": pc},
    }
    s["timings"] = {"sigma_s": 0.0, "train_s": train_s, "total_s": train_s + 1.0}
    return s


def test_mean_and_std_over_seeds(tmp_path):
    """Two methods x seeds: mean and sample std (ddof 1) by hand; seed is not a group key."""
    s = tmp_path / "sweep"
    s.mkdir()
    (s / "multirun.yaml").write_text("hydra: {}\n")
    _job(s, 0, ["seed=0", "method=rab_s025"], _results_summary(0, 0.30, [0.9, 0.6, 0.2], [0.8, 0.5, 0.1], 10.0))
    _job(s, 1, ["seed=1", "method=rab_s025"], _results_summary(1, 0.34, [0.9, 0.7, 0.4], [0.8, 0.7, 0.3], 14.0))
    _job(s, 2, ["seed=0", "method=grid_t025"], _results_summary(0, 0.50, [1.0, 0.8, 0.5], [0.9, 0.6, 0.2], 20.0))
    out = tmp_path / "rep"
    assert main([str(s), "--out", str(out)]) == 0
    seeds = pd.read_csv(out / "seeds.csv")
    assert seeds["method"].tolist() == ["rab_s025", "grid_t025"]  # the swept key, not seed
    rab = seeds.iloc[0]
    assert rab["n_seeds"] == 2 and rab["seeds"] == "0,1"
    assert rab["acr_mean"] == pytest.approx(0.32)
    assert rab["acr_std"] == pytest.approx(0.04 / 2 ** 0.5)  # |a - b| / sqrt(2) for two values
    assert rab["ca@0.5_mean"] == pytest.approx(0.3) and rab["ca@0.5_std"] == pytest.approx(0.2 / 2 ** 0.5)
    assert rab["pc@1_mean"] == pytest.approx(0.6) and rab["pc@2_std"] == pytest.approx(0.2 / 2 ** 0.5)
    assert rab["train_s_mean"] == pytest.approx(12.0) and rab["total_s_mean"] == pytest.approx(13.0)
    grid = seeds.iloc[1]
    assert grid["acr_mean"] == pytest.approx(0.5) and pd.isna(grid["acr_std"])  # one seed: no std
    md = (out / "report.md").read_text()
    assert "## Mean over seeds" in md
    assert "0.320 ± 0.028" in md  # the ACR cell of the two-seed group
    assert "| k=0 | k=1 | k=2 |" in md and "| sigma_s | train_s | total_s |" in md
    csv = pd.read_csv(out / "report.csv")
    assert csv["pc@1"].tolist() == pytest.approx([0.5, 0.7, 0.6])
