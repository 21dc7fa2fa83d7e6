"""The benchmark runs both trainers on the same work and ends with a machine-readable line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_digits_quick_ends_with_speedup_line():
    proc = subprocess.run([sys.executable, "-m", "certssb.tools.bench", "--setting", "digits", "--quick",
                           "--members", "8", "--group-size", "8", "--repeats", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert re.fullmatch(r"speedup=\d+(\.\d+)?", lines[-1]), lines[-1]
    text = proc.stdout
    for needle in ("one-at-a-time: median", "vectorised: median", "members/s", "samples/s", "GFLOP/s",
                   "matmul", "peak", "paper scale"):
        assert needle in text, needle
    # The difference is reported. After several epochs it is training drift, not an equivalence
    # check (that is tests/test_ensemble_train.py, after one Adam step): float32 kernels differ
    # between CPUs and the drift grows with every step, so only a gross disagreement fails here.
    diff = float(re.search(r"parameter difference[^:]*: ([0-9.e+-]+)", text).group(1))
    assert 0.0 <= diff < 1e-2


@pytest.mark.slow
def test_bench_partition_vectorised_parts_against_one_at_a_time():
    proc = subprocess.run([sys.executable, "-m", "certssb.tools.bench", "--setting", "partition", "--quick",
                           "--members", "40", "--repeats", "1", "--threads", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert re.fullmatch(r"speedup=\d+(\.\d+)?", lines[-1]), lines[-1]
    assert "40 parts (sizes 44, 45) x 3 epochs" in proc.stdout and "no noise" in proc.stdout
    diff = float(re.search(r"parameter difference[^:]*: ([0-9.e+-]+)", proc.stdout).group(1))
    assert 0.0 <= diff < 1e-2
