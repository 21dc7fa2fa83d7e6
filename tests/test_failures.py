"""A run that fails once started says so in its summary.json, in one line; the console gets one line.

In-process cases call :func:`certssb.pipeline.run` with a pipeline step replaced by one that
raises; the command-line cases run ``python -m certssb.run`` (or its ``main`` after the same
replacement) in a child process and read its stderr, exit code and files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from certssb import pipeline
from certssb.errors import DataNotFoundError
from certssb.run_record import TRACEBACK_NAME
from certssb.sweep_status import job_outcome
from conftest import FAST, REPO, compose_cfg

OVERRIDES = [*FAST, "sigma_optimiser=fixed", "undefended.enabled=false", "dataset.classes=[0,1]"]
TINY = ["ensemble.n_members=2", "ensemble.epochs=1", "undefended.enabled=false", "sigma_optimiser=fixed",
        "dataset.classes=[0,1]", "logger=none"]


def _run(out, *extra):
    return pipeline.run(compose_cfg([*OVERRIDES, *extra]), output_dir=out, progress=False)


def _summary(out) -> dict:
    return json.loads((out / "summary.json").read_text())


def _raise(exc):
    def step(*args, **kwargs):
        raise exc

    return step


# ------------------------------------------------------------------ in process


def test_absent_data_fails_the_run_in_its_summary(tmp_path):
    out, empty = tmp_path / "run", tmp_path / "no-data"
    empty.mkdir()
    with pytest.raises(DataNotFoundError) as err:
        _run(out, "dataset=cifar10", f"dataset.data_dir={empty}")
    line = str(err.value)
    assert "\n" not in line and "cifar-10-batches-py" in line
    assert _summary(out) == {"status": "failed", "error": line, "error_type": "DataNotFoundError",
                             "output_dir": str(out)}
    assert not (out / TRACEBACK_NAME).exists()  # input errors are their line


@pytest.mark.slow
def test_exception_after_training_is_recorded_and_the_members_stay(tmp_path, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(pipeline, "certify_sets", _raise(ZeroDivisionError("certify\n  failed here")))
    with pytest.raises(ZeroDivisionError):
        _run(out)
    summary = _summary(out)
    assert summary["status"] == "failed" and summary["error_type"] == "ZeroDivisionError"
    assert summary["error"] == "certify failed here"  # one line
    trace = (out / TRACEBACK_NAME).read_text()
    assert summary["traceback"] == str(out / TRACEBACK_NAME)
    assert trace.startswith("Traceback") and "ZeroDivisionError: certify" in trace and "in step" in trace
    assert len(list(out.glob("members/*/member_*.pt"))) == 4  # what was computed is kept
    assert job_outcome(out).reason == f"ZeroDivisionError: certify failed here (traceback in {out / TRACEBACK_NAME})"
    monkeypatch.undo()
    rerun = _run(out)
    assert rerun["status"] == "complete" and rerun["members"]["trained_now"] == 0
    assert _summary(out)["status"] == "complete"


CUDA_OOM = ("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.10 GiB of which "
            "3.06 MiB is free. Including non-PyTorch memory, this process has 79.09 GiB memory in use. Of the "
            "allocated memory 78.1 GiB is allocated by PyTorch, and 0.4 GiB is reserved by PyTorch but unallocated. "
            "If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True "
            "to avoid fragmentation.  See documentation for Memory Management  "
            "(https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)")


@pytest.mark.parametrize("exc, shown", [
    (torch.cuda.OutOfMemoryError(CUDA_OOM), "(CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has"),
    (MemoryError(), "(MemoryError)"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried "
                  "to allocate 98304000000 bytes. Error code 12 (Cannot allocate memory)"), "DefaultCPUAllocator"),
], ids=["cuda", "memory_error", "cpu_allocator"])
def test_out_of_memory_names_the_knobs_to_lower(tmp_path, monkeypatch, exc, shown):
    out = tmp_path / "run"
    monkeypatch.setattr(pipeline, "load_dataset", _raise(exc))
    with pytest.raises(type(exc)):
        _run(out)
    summary = _summary(out)
    error = summary["error"]
    assert summary["status"] == "failed" and summary["error_type"] == type(exc).__name__
    assert error.startswith("out of memory (") and shown in error and "\n" not in error
    assert "lower ensemble.group_size" in error and "ensemble.eval_batch_size" in error
    assert "expandable_segments" not in error  # torch's long advice is cut after the first sentences
    assert (out / TRACEBACK_NAME).is_file()


def test_interrupt_is_recorded_without_a_traceback(tmp_path, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(pipeline, "load_dataset", _raise(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        _run(out)
    summary = _summary(out)
    assert summary["status"] == "failed" and summary["error_type"] == "KeyboardInterrupt"
    assert summary["error"].startswith("interrupted; rerun with the same output dir")
    assert "traceback" not in summary and not (out / TRACEBACK_NAME).exists()


# ------------------------------------------------------------------ the command line

RAISE_AND_RUN = """
import sys
import certssb.pipeline as pipeline
real = pipeline.load_dataset
def broken(settings, seed):
    if seed == 0:
        raise RuntimeError("weights file\\nis broken")
    return real(settings, seed)
pipeline.load_dataset = broken
from certssb.run import main
main(sys.argv[1:])
"""


def _cli(tmp_path, args, code=None):
    env = {**os.environ, "WANDB_MODE": "disabled", "CERTSSB_DATA_DIR": str(tmp_path / "no-data"),
           "PYTHONPATH": str(REPO)}
    env.pop("HYDRA_FULL_ERROR", None)
    head = ["-c", code] if code else ["-m", "certssb.run"]
    return subprocess.run([sys.executable, *head, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)


def _job_log(out) -> str:
    (log,) = out.glob("*.log")
    return log.read_text()


@pytest.mark.slow
def test_cli_absent_data_is_one_line_exit_2_and_a_failed_summary(tmp_path):
    out, empty = tmp_path / "run", tmp_path / "empty"
    empty.mkdir()
    proc = _cli(tmp_path, ["dataset=cifar10", f"dataset.data_dir={empty}", f"hydra.run.dir={out}", "logger=none"])
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: CIFAR-10 not found: "), proc.stderr[-3000:]
    summary = _summary(out)
    assert summary["status"] == "failed" and summary["error_type"] == "DataNotFoundError"
    assert f"error: {summary['error']}" == lines[0]
    assert lines[0] in _job_log(out)


@pytest.mark.slow
def test_cli_unexpected_exception_is_one_line_and_a_traceback_file(tmp_path):
    out = tmp_path / "run"
    proc = _cli(tmp_path, [f"hydra.run.dir={out}", *TINY], code=RAISE_AND_RUN)
    assert proc.returncode == 1, proc.stderr[-3000:]
    trace = out / TRACEBACK_NAME
    assert proc.stderr.strip().splitlines() == [f"error: RuntimeError: weights file is broken (traceback in {trace})"]
    assert "Traceback" not in proc.stdout + proc.stderr  # the console gets the line only
    assert "RuntimeError: weights file" in trace.read_text()
    log = _job_log(out)
    assert "Traceback (most recent call last)" in log and "in broken" in log  # and the job log
    summary = _summary(out)
    assert (summary["status"], summary["error_type"], summary["error"], summary["traceback"]) == (
        "failed", "RuntimeError", "weights file is broken", str(trace))


@pytest.mark.slow
def test_cli_unexpected_exception_in_a_sweep_fails_its_job_alone(tmp_path):
    sweep = tmp_path / "sweep"
    proc = _cli(tmp_path, ["-m", "seed=0,1", f"hydra.sweep.dir={sweep}", *TINY], code=RAISE_AND_RUN)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    job = sweep / "0"
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: 1 of 2 jobs failed; first: {job}: RuntimeError: weights file is broken "
        f"(traceback in {job / TRACEBACK_NAME})")
    assert _summary(job)["status"] == "failed" and (job / TRACEBACK_NAME).is_file()
    assert _summary(sweep / "1")["status"] == "complete"  # the other job ran
