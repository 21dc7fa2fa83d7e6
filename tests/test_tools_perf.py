"""Throughput reporting of the benchmark and the GPU check (certssb/tools/perf.py): the peak table,
the MFU arithmetic and the profiler summary (on a CPU profile)."""

from __future__ import annotations

import re

import pytest
import torch

from certssb.tools import perf
from certssb.tools.perf import Kernel, Peak, card_of, datasheet_peak, mfu_text, peak_for, summarise_kernels


@pytest.mark.parametrize("name, card, bf16", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM", 989.4), ("NVIDIA H100 PCIe", "H100 PCIe", 756.5),
    ("NVIDIA H100 NVL", "H100 NVL", 835.5), ("NVIDIA H200", "H200", 989.4), ("NVIDIA H200 NVL", "H200 NVL", 835.5),
    ("NVIDIA GH200 480GB", "GH200", 989.4), ("NVIDIA A100-SXM4-80GB", "A100", 312.0),
    ("NVIDIA A100 80GB PCIe", "A100", 312.0), ("NVIDIA A10", "A10", 125.0), ("NVIDIA L4", "L4", 121.0),
    ("NVIDIA L40S", "L40S", 362.05), ("NVIDIA L40", "L40", 181.0), ("NVIDIA GeForce RTX 4090", "RTX 4090", 165.2),
    ("NVIDIA B200", "B200", 2250.0)])
def test_peak_table_by_device_name(name, card, bf16):
    assert card_of(name) == card
    peak = datasheet_peak(name, "bf16")
    assert peak.flops == bf16 * 1e12 and peak.source == f"datasheet {card}"
    # dense tensor-core figures: TF32 is half of BF16 on these cards, FP32 (no tensor cores) far below
    tf32, fp32 = datasheet_peak(name, "tf32").flops, datasheet_peak(name, "fp32").flops
    assert tf32 == pytest.approx(bf16 * 1e12 / 2, rel=0.03) and fp32 <= tf32


def test_unknown_cards_and_missing_precisions_are_measured():
    assert card_of("NVIDIA A10G") is None and card_of("Some Future GPU") is None
    assert datasheet_peak("Tesla V100-SXM2-16GB", "bf16") is None  # no bf16 on Volta
    assert datasheet_peak("Tesla V100-SXM2-16GB", "fp32").flops == 15.7e12
    calls = []
    peak = peak_for(torch.device("cpu"), "fp32", measure=lambda dev, dtype: calls.append(dtype) or 2.5e11)
    assert peak == Peak(2.5e11, "fp32", "measured 1024x1024 matmul") and calls == [torch.float32]
    assert "250.0 GFLOP" not in peak.label() and peak.label().startswith("0.2 TFLOP/s dense fp32 (measured")


def test_mfu_arithmetic():
    # 2 MFLOP per member-sample, 64 members x 128 samples in 4 ms: 4.096 TFLOP/s of a 989.4 TFLOP/s peak
    text = mfu_text(2e6, 64 * 128, 4e-3, Peak(989.4e12, "bf16", "datasheet H100 SXM"))
    assert text == "4.096 TFLOP/s, MFU 0.41%"
    assert mfu_text(1e6, 1e6, 1.0, Peak(1e14, "fp32", "x")) == "1.000 TFLOP/s, MFU 1.00%"


def test_training_precision():
    assert perf.training_precision(torch.bfloat16, "cuda") == "bf16"
    assert perf.training_precision(None, "cpu") == "fp32"
    before = torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = True
        assert perf.training_precision(None, "cuda") == "tf32"
        torch.backends.cudnn.allow_tf32 = False
        assert perf.training_precision(None, "cuda") == "fp32"
    finally:
        torch.backends.cudnn.allow_tf32 = before


def test_summary_arithmetic_on_synthetic_kernels():
    """2 steps in 10 ms of wall time; kernels overlap on two streams (counted once when busy)."""
    ks = [Kernel("gemm", 0, 2000), Kernel("gemm", 1000, 3000), Kernel("relu", 4000, 4500),
          Kernel("Memcpy HtoD (Pinned -> Device)", 5000, 5100), Kernel("gemm", 6000, 8000)]
    lines = summarise_kernels(ks, 2, 0.010, "test", allocated_bytes=4 * 2**20)
    # busy: [0, 3000] + [4000, 4500] + [5000, 5100] + [6000, 8000] = 5600 us over 2 steps = 2.8 ms/step
    assert lines[0] == ("profile [test, 2 steps]: wall 5.000 ms/step; kernels busy 2.800 ms/step (56% of the wall "
                        "time; 44% launch gaps and host work); 2.5 kernels/step")
    assert re.match(r"\s+90\.9%\s+3\.000 ms/step x1\.5\s+gemm$", lines[1]), lines[1]  # 6000 of 6600 us
    assert "relu" in lines[2] and "Memcpy" in lines[3]
    assert lines[-1].startswith("  memory: 2.0 MiB allocated/step; memcpy 0.5/step (0.050 ms), memset 0.0/step")


def test_profile_summary_of_cpu_training_steps():
    from certssb.ensemble.group_trainer import FitSpec, GroupTrainer
    from certssb.ensemble.jobs import member_job
    from certssb.model import model_factory
    from conftest import model_option
    f = model_factory(model_option("digits_cnn"), (1, 8, 8), 3)
    x, y = torch.rand(64, 1, 8, 8), torch.arange(64) % 3
    trainer = GroupTrainer(f, [member_job(0, k) for k in range(3)], x, y, torch.full((64,), 0.2),
                           FitSpec(1, 16, 1e-2, torch.device("cpu")))
    batches = list(trainer.batches(0))
    it = iter(batches * 2)
    lines = perf.profile_steps(lambda: trainer.step(*next(it)), 2, torch.device("cpu"), "digits_cnn")
    assert re.fullmatch(r"profile \[digits_cnn; CPU: operators' self time stands for kernels, 2 steps\]: wall [0-9.]+ "
                        r"ms/step; kernels busy [0-9.]+ ms/step \(\d+% of the wall time; \d+% launch gaps and host "
                        r"work\); [0-9.]+ kernels/step", lines[0]), lines[0]
    tops = [line for line in lines[1:-1]]
    assert 1 <= len(tops) <= 6 and all(re.match(r"\s+[0-9.]+% +[0-9.]+ ms/step x\S+\s+aten::", t) for t in tops)
    shares = [float(t.split("%")[0]) for t in tops]
    assert shares == sorted(shares, reverse=True) and sum(shares) <= 100.05
    assert lines[-1].startswith("  memory: ") and "MiB allocated/step" in lines[-1]
