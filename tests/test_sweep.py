"""Real multiruns: two jobs with offline W&B runs and a report; kill a sweep and resume it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from certssb.tools.report import main as report_main

REPO = Path(__file__).resolve().parent.parent
TINY = ["ensemble.n_members=4", "ensemble.epochs=2", "undefended.epochs=2", "dataset.classes=[0,1]"]


def _env(**extra):
    env = {**os.environ, **extra}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


@pytest.mark.slow
def test_two_job_multirun_with_offline_wandb_and_report(tmp_path):
    sweep = tmp_path / "sweep_rab_vs_ssb"
    proc = subprocess.run(
        [sys.executable, "-m", "certssb.run", "-m", "sigma_optimiser=fixed,sga_light", "logger=wandb",
         f"hydra.sweep.dir={sweep}", *TINY],
        cwd=REPO, env=_env(WANDB_MODE="offline", WANDB_SILENT="true"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and (p / ".hydra").is_dir())
    assert len(jobs) == 2
    methods = set()
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "complete"
        methods.add(summary["method"])
        runs = list((job / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, runs  # one offline W&B run per job
        record = next(runs[0].glob("run-*.wandb")).read_bytes()
        assert sweep.name.encode() in record  # grouped by the sweep
        assert summary["method"].encode() in record  # job_type tells RAB from Cert-SSB
        tables = list(runs[0].glob("files/media/table/curves_*.table.json"))
        assert len(tables) == 1
        table = json.loads(tables[0].read_text())
        assert table["columns"] == ["split", "variant", "radius", "certified_accuracy"]
        n_rows = sum(len(c["radii"]) * len(c["certified_accuracy"]) for c in summary["curves"].values())
        assert len(table["data"]) == n_rows
    assert methods == {"rab", "cert-ssb"}

    out = tmp_path / "report"
    assert report_main([str(sweep), "--out", str(out)]) == 0
    df = pd.read_csv(out / "report.csv")
    assert len(df) == 2 and "sigma_optimiser" in df.columns
    assert set(df["sigma_optimiser"]) == {"fixed", "sga_light"}
    assert (out / "report.md").read_text().count("| ") > 4
    assert any(p.stat().st_size > 1000 for p in out.glob("curves_*.png"))


@pytest.mark.slow
def test_killed_sweep_resumes_without_retraining(tmp_path):
    """Job 0 completes; job 1 is killed right after saving 2 of its 8 members (a test hook blocks
    the process there and signals by creating a file), then the rerun resumes the sweep."""
    sweep = tmp_path / "sweep"
    n = 8
    args = [sys.executable, "-m", "certssb.run", "-m", "seed=0,1", f"hydra.sweep.dir={sweep}",
            "sigma_optimiser=fixed", "undefended.enabled=false", "ensemble.vectorise=false",
            f"ensemble.n_members={n}", "ensemble.epochs=2", "logger=none", "dataset.classes=[0,1]"]
    marker = tmp_path / "frozen"
    hook = str(Path(__file__).resolve().parent / "freeze_hook")
    env = _env(WANDB_MODE="disabled", CERTSSB_FREEZE_AFTER_SAVES=str(n + 2), CERTSSB_FREEZE_MARKER=str(marker),
               PYTHONPATH=os.pathsep.join([hook, str(REPO)]))
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 300
        while not marker.exists():  # the event: job 1 saved its 2nd member and froze
            assert proc.poll() is None, "the sweep ended before job 1 froze"
            assert time.time() < deadline, "job 1 never saved 2 members"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    job0 = sweep / "0" / "summary.json"
    assert json.loads(job0.read_text())["status"] == "complete"
    assert json.loads((sweep / "1" / "summary.json").read_text())["status"] == "running"  # killed mid-run
    before = {p.name for p in sweep.glob("1/members/*/member_*.pt")}
    assert len(before) == 2
    job0_mtime = job0.stat().st_mtime

    rerun = subprocess.run(args, cwd=REPO, env=_env(WANDB_MODE="disabled"), capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert job0.stat().st_mtime == job0_mtime  # the complete job was skipped
    summary = json.loads((sweep / "1" / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert summary["members"]["trained_now"] == n - 2  # only the missing members


@pytest.mark.slow
def test_failed_job_finishes_its_wandb_run_and_the_sweep_goes_on(tmp_path):
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, "-m", "certssb.run", "-m", "dataset=cifar10,digits", "logger=wandb",
         "sigma_optimiser=fixed", f"hydra.sweep.dir={sweep}", *TINY],
        cwd=REPO, env=_env(WANDB_MODE="offline", WANDB_SILENT="true", CERTSSB_DATA_DIR=str(tmp_path / "none")),
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1  # the failed job is reported at the end, in one line
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 2 jobs failed") and "cifar-10-batches-py" in last
    failed, done = sweep / "0", sweep / "1"
    assert json.loads((failed / "summary.json").read_text())["status"] == "failed"
    assert json.loads((done / "summary.json").read_text())["status"] == "complete"
    for job in (failed, done):
        runs = list((job / "wandb").glob("offline-run-*"))
        assert len(runs) == 1
        log = (runs[0] / "logs" / "debug.log").read_text()
        assert "finishing run" in log  # the run was finished, also for the failed job
        expected = "got exitcode: 1" if job is failed else "got exitcode: 0"
        assert expected in log or job is done
