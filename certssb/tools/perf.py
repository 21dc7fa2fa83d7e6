"""Throughput figures for the benchmark and the GPU check: a card's dense peak FLOP/s in the training
precision, achieved FLOP/s and model-FLOPs utilisation (MFU), and a profiler summary of training
steps (top kernels, busy time against wall time, memory).

Achieved FLOP/s counts the model's FLOPs only (``torch.utils.flop_counter``: the matrix products
and convolutions of one member's forward and backward pass per sample, ``bench.step_flops``),
times the samples every member trained on, over the wall time; elementwise work, Adam and the
noise are not counted (the usual MFU convention). MFU = achieved / dense peak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

# Dense (no structured sparsity) peak tensor-core TFLOP/s per card, from the vendors' datasheets;
# the datasheets print the sparse figure first for Hopper/Ada/Ampere, the dense one is half of it.
#   H100 SXM5 (NVIDIA H100 Tensor Core GPU datasheet): BF16 1,979* -> 989.4; TF32 989* -> 494.7; FP32 66.9
#   H100 PCIe (same datasheet): BF16 1,513* -> 756.5; TF32 756* -> 378; FP32 51.2
#   H100 NVL (same datasheet): BF16 1,671* -> 835.5; TF32 835* -> 417.5; FP32 60
#   H200 SXM (NVIDIA H200 datasheet, same compute as H100 SXM): BF16 989.4; TF32 494.7; FP32 66.9
#   H200 NVL (H200 datasheet): BF16 1,671* -> 835.5; TF32 835* -> 417.5; FP32 60
#   GH200 (NVIDIA GH200 Grace Hopper datasheet): BF16 1,979* -> 989.4; TF32 494.7; FP32 67
#   B200 (NVIDIA HGX B200 datasheet, per GPU): BF16 4.5 PF* -> 2,250; TF32 2.2 PF* -> 1,100; FP32 75
#   A100 SXM4 / PCIe (NVIDIA A100 datasheet): BF16 312 (624*); TF32 156 (312*); FP32 19.5
#   A10 (NVIDIA A10 datasheet): BF16 125 (250*); TF32 62.5 (125*); FP32 31.2
#   A40 (NVIDIA A40 datasheet): BF16 149.7 (299.4*); TF32 74.8 (149.6*); FP32 37.4
#   L4 (NVIDIA L4 datasheet): BF16 242* -> 121; TF32 120* -> 60; FP32 30.3
#   L40S (NVIDIA L40S datasheet): BF16 362.05 (733*); TF32 183 (366*); FP32 91.6
#   L40 (NVIDIA L40 datasheet): BF16 181 (362*); TF32 90.5 (181*); FP32 90.5
#   GeForce RTX 4090 (NVIDIA Ada GPU architecture whitepaper, BF16 with FP32 accumulate): 165.2; TF32 82.6; FP32 82.6
#   GeForce RTX 3090 (NVIDIA Ampere GA102 whitepaper, FP32 accumulate): BF16 71; TF32 35.6; FP32 35.6
#   V100 SXM2 (NVIDIA V100 datasheet): no BF16/TF32; FP32 15.7.  T4 (T4 datasheet): FP32 8.1
# None: the card lacks that precision. (* = with sparsity.)
PEAK_TFLOPS: dict[str, dict[str, float | None]] = {
    "H100 SXM": {"bf16": 989.4, "tf32": 494.7, "fp32": 66.9},
    "H100 PCIe": {"bf16": 756.5, "tf32": 378.0, "fp32": 51.2},
    "H100 NVL": {"bf16": 835.5, "tf32": 417.5, "fp32": 60.0},
    "H200": {"bf16": 989.4, "tf32": 494.7, "fp32": 66.9},
    "H200 NVL": {"bf16": 835.5, "tf32": 417.5, "fp32": 60.0},
    "GH200": {"bf16": 989.4, "tf32": 494.7, "fp32": 67.0},
    "B200": {"bf16": 2250.0, "tf32": 1100.0, "fp32": 75.0},
    "A100": {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5},
    "A10": {"bf16": 125.0, "tf32": 62.5, "fp32": 31.2},
    "A40": {"bf16": 149.7, "tf32": 74.8, "fp32": 37.4},
    "L4": {"bf16": 121.0, "tf32": 60.0, "fp32": 30.3},
    "L40S": {"bf16": 362.05, "tf32": 183.0, "fp32": 91.6},
    "L40": {"bf16": 181.0, "tf32": 90.5, "fp32": 90.5},
    "RTX 4090": {"bf16": 165.2, "tf32": 82.6, "fp32": 82.6},
    "RTX 3090": {"bf16": 71.0, "tf32": 35.6, "fp32": 35.6},
    "V100": {"bf16": None, "tf32": None, "fp32": 15.7},
    "T4": {"bf16": None, "tf32": None, "fp32": 8.1},
}

# device name (torch.cuda.get_device_name) -> table row; the first match wins
_CARDS = [(r"GH200", "GH200"), (r"H200.*NVL", "H200 NVL"), (r"H200", "H200"), (r"H100.*PCIe", "H100 PCIe"),
          (r"H100.*NVL", "H100 NVL"), (r"H100", "H100 SXM"), (r"B200", "B200"), (r"A100", "A100"),
          (r"L40S", "L40S"), (r"L40\b", "L40"), (r"\bL4\b", "L4"), (r"\bA10\b(?!G)", "A10"), (r"\bA40\b", "A40"),
          (r"RTX 4090", "RTX 4090"), (r"RTX 3090", "RTX 3090"), (r"V100", "V100"), (r"\bT4\b", "T4")]


def card_of(device_name: str) -> str | None:
    """The :data:`PEAK_TFLOPS` row of a device name (None: not in the table)."""
    for pattern, card in _CARDS:
        if re.search(pattern, device_name, flags=re.IGNORECASE):
            return card
    return None


@dataclass(frozen=True)
class Peak:
    flops: float  # FLOP/s
    precision: str  # bf16 | tf32 | fp32
    source: str  # "datasheet <card>" | "measured <n>x<n> matmul"

    def label(self) -> str:
        return f"{self.flops / 1e12:.1f} TFLOP/s dense {self.precision} ({self.source})"


def training_precision(autocast_dtype, device_type: str) -> str:
    """The tensor-core precision a training run's FLOPs go through: ``bf16`` under bf16 autocast;
    in float32 on CUDA ``tf32`` where cuDNN may use it for convolutions (torch's default,
    ``torch.backends.cudnn.allow_tf32``), else ``fp32``."""
    if autocast_dtype == torch.bfloat16:
        return "bf16"
    if device_type == "cuda" and torch.backends.cudnn.allow_tf32:
        return "tf32"
    return "fp32"


def datasheet_peak(device_name: str, precision: str) -> Peak | None:
    card = card_of(device_name)
    value = PEAK_TFLOPS.get(card, {}).get(precision) if card else None
    return None if value is None else Peak(value * 1e12, precision, f"datasheet {card}")


def peak_for(device: torch.device, precision: str, measure=None) -> Peak:
    """The dense peak of ``device`` in ``precision``: the datasheet figure of a known card, else
    measured by a large matrix product (``measure(device, dtype) -> FLOP/s``; default
    ``bench.matmul_flops`` with 8192 x 8192 on CUDA, 1024 x 1024 on the CPU)."""
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    found = datasheet_peak(name, precision)
    if found is not None:
        return found
    size = 8192 if device.type == "cuda" else 1024
    if measure is None:
        from certssb.tools.bench import matmul_flops
        measure = lambda dev, dtype: matmul_flops(dev, size=size, dtype=dtype)  # noqa: E731
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    return Peak(float(measure(device, dtype)), precision, f"measured {size}x{size} matmul")


def mfu_text(flops_per_sample: float, samples: float, seconds: float, peak: Peak) -> str:
    """``achieved TFLOP/s, MFU %`` of ``samples`` member-samples trained in ``seconds``."""
    achieved = flops_per_sample * samples / max(seconds, 1e-12)
    return f"{achieved / 1e12:.3f} TFLOP/s, MFU {100 * achieved / peak.flops:.2f}%"


# --- profiler summary ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Kernel:
    """One kernel (or, in a CPU profile, one leaf operator) of the profiled steps."""

    name: str
    start_us: float
    end_us: float

    @property
    def kind(self) -> str:
        low = self.name.lower()
        return "memcpy" if "memcpy" in low else ("memset" if "memset" in low else "kernel")


def kernels_of(prof, device_type: str) -> list[Kernel]:
    """The device kernels of a ``torch.profiler`` run (CUDA), or, in a CPU profile, every
    ``aten::`` operator for its self time (from its start: the work a CPU runs in place of
    kernels; an operator's children are counted as themselves)."""
    out = []
    for ev in prof.events():
        start = float(ev.time_range.start)
        if device_type == "cuda":
            if ev.device_type == torch.autograd.DeviceType.CUDA:
                out.append(Kernel(ev.name, start, float(ev.time_range.end)))
        elif ev.device_type == torch.autograd.DeviceType.CPU and ev.name.startswith("aten::"):
            out.append(Kernel(ev.name, start, start + float(ev.self_cpu_time_total)))
    return out


def _busy_us(kernels: list[Kernel]) -> float:
    """Length of the union of the kernels' intervals (overlapping streams counted once)."""
    total, end = 0.0, float("-inf")
    for k in sorted(kernels, key=lambda k: k.start_us):
        if k.end_us <= end:
            continue
        total += k.end_us - max(k.start_us, end)
        end = k.end_us
    return total


def summarise_kernels(kernels: list[Kernel], steps: int, wall_s: float, label: str, allocated_bytes: float | None = None,
                      top: int = 6) -> list[str]:
    """Lines of a profile summary: wall time per step against kernel busy time (the rest is launch
    gaps and host work), kernels per step, the top kernels by time and the memory figures."""
    steps = max(1, int(steps))
    wall_ms = 1e3 * wall_s / steps
    busy_ms = _busy_us(kernels) / 1e3 / steps
    share = 100 * busy_ms / wall_ms if wall_ms > 0 else 0.0
    lines = [f"profile [{label}, {steps} steps]: wall {wall_ms:.3f} ms/step; kernels busy {busy_ms:.3f} ms/step "
             f"({share:.0f}% of the wall time; {max(0.0, 100 - share):.0f}% launch gaps and host work); "
             f"{len(kernels) / steps:.1f} kernels/step"]
    by_name: dict[str, list[float]] = {}
    for k in kernels:
        by_name.setdefault(k.name, []).append(k.end_us - k.start_us)
    total = sum(sum(v) for v in by_name.values()) or 1.0
    ranked = sorted(by_name.items(), key=lambda kv: -sum(kv[1]))[:top]
    for name, times in ranked:
        short = name if len(name) <= 90 else name[:87] + "..."
        lines.append(f"  {100 * sum(times) / total:5.1f}% {sum(times) / 1e3 / steps:8.3f} ms/step "
                     f"x{len(times) / steps:<5.3g} {short}")
    moves = {kind: [k for k in kernels if k.kind == kind] for kind in ("memcpy", "memset")}
    mem = [f"{kind} {len(ks) / steps:.1f}/step ({sum(k.end_us - k.start_us for k in ks) / 1e3 / steps:.3f} ms)"
           for kind, ks in moves.items()]
    alloc = "" if allocated_bytes is None else f"{allocated_bytes / steps / 2**20:.1f} MiB allocated/step; "
    lines.append(f"  memory: {alloc}{', '.join(mem)}; DRAM traffic is not reported by torch.profiler (ncu reads it)")
    return lines


def allocated_bytes(prof, device_type: str) -> float:
    """Bytes the profiled operators allocated (positive self allocations, summed)."""
    attr = "self_device_memory_usage" if device_type == "cuda" else "self_cpu_memory_usage"
    return float(sum(max(0, getattr(e, attr, 0) or 0) for e in prof.key_averages()))


def profile_steps(step, steps: int, device: torch.device, label: str) -> list[str]:
    """Run ``step()`` ``steps`` times unprofiled (the wall time), then ``steps`` times under
    ``torch.profiler`` (CUDA kernels on a GPU; their busy time) and summarise."""
    import time

    from torch.profiler import ProfilerActivity, profile

    device = torch.device(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()  # the wall time without the profiler's own overhead
    for _ in range(steps):
        step()
    sync()
    wall = time.perf_counter() - t0
    with profile(activities=activities, profile_memory=True) as prof:
        for _ in range(steps):
            step()
        sync()
    if device.type != "cuda":
        label += "; CPU: operators' self time stands for kernels"
    return summarise_kernels(kernels_of(prof, device.type), steps, wall, label, allocated_bytes(prof, device.type))
