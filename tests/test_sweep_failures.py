"""Every launcher ends a sweep with a failed job with one line and exit 1, from the summaries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from certssb.sweep_status import failure_line, job_folders, job_outcome

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
TINY = ["ensemble.n_members=2", "ensemble.epochs=1", "undefended.enabled=false", "sigma_optimiser=fixed",
        "dataset.classes=[0,1]", "logger=none"]
# The basic launcher's case is tests/test_sweep.py::test_failed_job_finishes_its_wandb_run_and_the_sweep_goes_on.
LAUNCHERS = {
    "certssb_gpu": ["hydra/launcher=certssb_gpu", "hydra.launcher.gpus=[]", "hydra.launcher.max_parallel=2",
                    "hydra.launcher.poll_interval_s=0.05"],
    "certssb_slurm": ["hydra/launcher=certssb_slurm",
                      "hydra.launcher._target_=hydra_plugins.certssb_slurm_local_adapter.SlurmPresetOnLocalExecutor",
                      "hydra.launcher.gpus_per_node=0", "hydra.launcher.cpus_per_task=1"],
}


def _env(tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled", "CERTSSB_DATA_DIR": str(tmp_path / "no-data")}
    env.pop("HYDRA_FULL_ERROR", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(TESTS)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


@pytest.mark.slow
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_failed_job_ends_the_sweep_with_one_line_and_exit_1(tmp_path, launcher):
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, "-m", "certssb.run", "-m", "dataset=cifar10,digits", f"hydra.sweep.dir={sweep}",
         *LAUNCHERS[launcher], *TINY],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=400)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 2 jobs failed; first: "), proc.stderr[-3000:]
    assert "cifar-10-batches-py" in last
    assert json.loads((sweep / "0" / "summary.json").read_text())["status"] == "failed"
    assert json.loads((sweep / "1" / "summary.json").read_text())["status"] == "complete"
    if launcher == "certssb_gpu":  # (the local stand-in for SLURM is submitit's own executor)
        assert not any("%j" in p.name for p in sweep.rglob("*"))  # no literal placeholder folder


# ------------------------------------------------------------ reading the summaries (fast)


def _job(root: Path, name: str, summary) -> Path:
    folder = root / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("[]\n")
    if summary is not None:
        (folder / "summary.json").write_text(summary if isinstance(summary, str) else json.dumps(summary))
    return folder


def test_outcomes_from_summaries(tmp_path):
    _job(tmp_path, "0", {"status": "complete"})
    _job(tmp_path, "1", {"status": "members_trained"})
    _job(tmp_path, "10", {"status": "failed", "error": "bad data"})
    _job(tmp_path, "2", {"status": "running"})  # killed mid-run
    _job(tmp_path, "3", '{"status": "comp')  # half-written
    _job(tmp_path, "4", None)  # crashed before writing
    _job(tmp_path, ".submitit/5", {"status": "failed"})  # not a job folder of the sweep
    folders = job_folders(tmp_path)
    assert [f.name for f in folders] == ["0", "1", "2", "3", "4", "10"]  # natural order
    outcomes = [job_outcome(f) for f in folders]
    assert [o.ok for o in outcomes] == [True, True, False, False, False, False]
    line = failure_line(outcomes)
    assert line.startswith("4 of 6 jobs failed; first: ") and "status 'running'" in line
    assert "unreadable" in outcomes[3].reason and "no summary.json" in outcomes[4].reason
    assert outcomes[5].reason == "bad data"
    assert failure_line(outcomes[:2]) is None


def test_only_this_sweeps_jobs_count(tmp_path):
    old = _job(tmp_path, "old", {"status": "failed", "error": "from an earlier sweep"})
    os.utime(old / ".hydra" / "overrides.yaml", (1_000_000, 1_000_000))
    _job(tmp_path, "new", {"status": "complete"})
    assert [f.name for f in job_folders(tmp_path, since=2_000_000)] == ["new"]
    assert [f.name for f in job_folders(tmp_path)] == ["new", "old"]
    assert job_folders(tmp_path / "absent") == []
