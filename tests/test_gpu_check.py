"""The one-shot GPU check: its CPU dry run (what `make gpu-check DRY=1` runs) and its parts."""

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from certssb.config import load_option

from certssb.dataset import load_dataset
from certssb.tools import gpu_check

REPO = Path(__file__).resolve().parent.parent


def test_synthetic_fashion_files_load_with_the_pipeline_loader(tmp_path):
    gpu_check.write_synthetic_fashion(tmp_path, 60, 30)
    d = load_dataset(load_option("dataset", "fashion_mnist", data_dir=str(tmp_path), classes=[0, 1]), 0)
    assert d.x_train.shape == (12, 1, 28, 28) and d.x_test.shape == (6, 1, 28, 28)
    assert set(d.y_train.tolist()) == {0, 1}
    # learnable: class 1's band (rows 4..7) is brighter than class 0's there
    band = d.x_train.to_float()[:, 0, 4:8, 4:24].mean((1, 2))
    assert band[d.y_train == 1].min() > band[d.y_train == 0].max()


def test_a_failing_check_prints_fail_and_counts(capsys):
    checks = gpu_check.Checks()
    checks.run("good", lambda: (True, "fine"))
    checks.run("bad", lambda: 1 / 0)
    checks.run("missed", lambda: (False, "below target"))
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("PASS good: fine") and out[1].startswith("FAIL bad: ZeroDivisionError")
    assert out[2].startswith("FAIL missed: below target")
    assert [ok for _, ok in checks.results] == [True, False, False]


def test_cuda_device_without_cuda_is_one_line(capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("checks the behaviour without CUDA")
    assert gpu_check.main(["--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ensemble.device=cuda requested but")


@pytest.mark.slow
def test_cpu_dry_run_passes_every_check():
    """The dry run of every check but `cuda-tests` (this suite runs those tests itself)."""
    env = {**os.environ, "WANDB_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    only = "environment,mnist-vectorised,precision,cifar-resnet,determinism,multirun,switches,profile"
    proc = subprocess.run([sys.executable, "-m", "certssb.tools.gpu_check", "--dry-run", "--device", "cpu",
                           "--only", only], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    verdicts = [line.split(":")[0] for line in lines if line.startswith(("PASS", "FAIL"))]
    assert verdicts == [f"PASS {name}" for name in only.split(",")], proc.stdout
    assert re.fullmatch(r"gpu-check: 8/8 checks passed in \d+ s on cpu", lines[-1]), lines[-1]
    for needle in ("MFU", "TFLOP/s dense", "vmap (reference)", "grouped+fused+pad+cudagraphs", "shuffle per epoch",
                   "profile [mnist_cnn, vmap (reference)", "kernels busy", "launch gaps"):
        assert needle in proc.stdout, needle
    assert "rerun bit-identical True, resumed bit-identical True" in proc.stdout
    assert "SYNTHETIC" in proc.stdout or "Fashion-MNIST T-shirt" in proc.stdout
