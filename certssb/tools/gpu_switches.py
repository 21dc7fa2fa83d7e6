"""The GPU check's measurements of the speed switches (``certssb/ensemble/speed.py``): the reference
vectorised step and each switch on the same card, in the same process, at the same group size,
with the ratio to the reference; the device shuffle's cost per epoch; the engine that
``vectorise=measure`` picks; and profiler summaries of single training steps.

Each configuration builds a :class:`~certssb.ensemble.group_trainer.GroupTrainer` on a slice of
``steps`` batches, runs one epoch to warm up (this is where ``inductor`` compiles and
``cudagraphs`` captures; both times are printed) and times the second epoch. ``members/s`` is
member-epochs per second at the workload's epoch size (12,000 Fashion-MNIST or 10,000 CIFAR-10
images), from the time per step; FLOP/s and MFU as in :mod:`certssb.tools.perf`.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, replace

import torch

from certssb.ensemble.group_trainer import FitSpec, GroupTrainer, measure_engine
from certssb.ensemble.jobs import member_job
from certssb.ensemble.precision import Precision
from certssb.ensemble.speed import Speed
from certssb.tools.perf import Peak, mfu_text, profile_steps

#: (label, switches, keep channels-last on the grouped engine), in the order they are measured
CONFIGS = [
    ("vmap (reference)", Speed(), True),
    ("grouped", Speed("grouped"), True),
    ("grouped, default layout", Speed("grouped"), False),
    ("vmap+fused", Speed(adam="fused"), True),
    ("vmap+pad", Speed(pad=True), True),
    ("vmap+pad+cudagraphs", Speed(pad=True, compile="cudagraphs"), True),
    ("grouped+fused+pad+cudagraphs", Speed("grouped", "fused", True, "cudagraphs"), True),
    ("grouped+fused+pad+inductor", Speed("grouped", "fused", True, "inductor"), True),
    ("vmap+pad+inductor", Speed(pad=True, compile="inductor"), True),
]
PROFILED = ("vmap (reference)", "grouped", "grouped+fused+pad+cudagraphs")


@dataclass
class Workload:
    """One model's data and sizes for the switch measurements (data already on the device)."""

    name: str
    factory: object
    x: torch.Tensor
    y: torch.Tensor
    sigmas: torch.Tensor
    batch: int
    group: int
    steps: int
    epoch_images: int
    precision: Precision
    flops_per_sample: float
    peak: Peak
    desc: str = ""

    @property
    def device(self) -> torch.device:
        return self.x.device

    def trainer(self, speed: Speed, channels_last: bool = True) -> GroupTrainer:
        precision = self.precision if channels_last else replace(self.precision, channels_last=False)
        n = min(len(self.x), self.steps * self.batch)
        jobs = [member_job(0, k) for k in range(self.group)]
        spec = FitSpec(2, self.batch, 1e-3, self.device, precision, speed)
        return GroupTrainer(self.factory, jobs, self.x[:n], self.y[:n], self.sigmas[:n], spec)


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    step_s: float
    setup_s: float
    warm_s: float


def time_config(w: Workload, speed: Speed, channels_last: bool = True) -> Timing:
    """Seconds per step of the second epoch, after the setup and a warm-up epoch (timed too)."""
    t0 = time.perf_counter()
    trainer = w.trainer(speed, channels_last)
    _sync(w.device)
    t1 = time.perf_counter()
    trainer.epoch(0)
    _sync(w.device)
    t2 = time.perf_counter()
    trainer.epoch(1)
    _sync(w.device)
    t3 = time.perf_counter()
    steps = len(trainer.starts)
    del trainer
    if w.device.type == "cuda":
        torch.cuda.empty_cache()
    return Timing((t3 - t2) / steps, t1 - t0, t2 - t1)


def members_per_s(w: Workload, step_s: float) -> float:
    """Member-epochs per second at the workload's epoch size."""
    return w.group / (step_s * math.ceil(w.epoch_images / w.batch))


def _config_line(w: Workload, label: str, t: Timing, base: Timing | None) -> str:
    ratio = "" if base is None else f" | x{base.step_s / t.step_s:.2f} vs reference"
    return (f"    {label:<30} {1e3 * t.step_s:9.2f} ms/step | {members_per_s(w, t.step_s):9.3g} members/s | "
            f"{mfu_text(w.flops_per_sample, w.group * w.batch, t.step_s, w.peak)}{ratio} "
            f"(setup {t.setup_s:.1f} s, warm-up epoch {t.warm_s:.1f} s)")


def skip_reason(speed: Speed, device: torch.device, dry_run: bool) -> str | None:
    if speed.compile == "cudagraphs" and device.type != "cuda":
        return "skipped: CUDA graphs need CUDA"
    if speed.compile == "inductor" and dry_run:
        return "skipped in the dry run (compiling takes about a minute on a CPU; tests/test_ensemble_speed.py runs it)"
    return None


def measure_switches(w: Workload, deadline: float, dry_run: bool = False) -> tuple[bool, str]:
    """Every configuration of :data:`CONFIGS` on ``w`` (lines printed as measured); returns
    (all that ran ran without error, a one-line summary with the best ratio)."""
    print(f"  switches, {w.name}: {w.desc}; {w.group} models per group, batch {w.batch}, {w.precision.name}, "
          f"{w.steps} timed steps; {w.flops_per_sample / 1e6:.2f} MFLOP per member-sample; peak {w.peak.label()}",
          flush=True)
    base, best, errors = None, None, []
    for label, speed, channels_last in CONFIGS:
        why = skip_reason(speed, w.device, dry_run)
        if why is None and time.monotonic() > deadline:
            why = "skipped: the check's time budget is spent"
        if why is not None:
            print(f"    {label:<30} {why}", flush=True)
            continue
        try:
            t = time_config(w, speed, channels_last)
        except Exception as exc:  # one line; the measurement goes on with the next switch
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            errors.append(label)
            print(f"    {label:<30} FAILED: {type(exc).__name__}: {first[:200]}", flush=True)
            continue
        base = base or t
        print(_config_line(w, label, t, base), flush=True)
        if best is None or t.step_s < best[1].step_s:
            best = (label, t)
    if base is None:
        return False, f"{w.name}: nothing measured"
    summary = (f"{w.name}: best {best[0]} x{base.step_s / best[1].step_s:.2f} over the reference "
               f"({members_per_s(w, best[1].step_s):.3g} vs {members_per_s(w, base.step_s):.3g} members/s)")
    return not errors, summary + (f"; FAILED: {', '.join(errors)}" if errors else "")


def shuffle_costs(w: Workload, epoch_images: int) -> str:
    """Per-epoch cost of the host shuffle (randperms + copy) and of the device shuffle for a group."""
    jobs_host = [member_job(0, k) for k in range(w.group)]
    jobs_dev = [member_job(0, k, None, "device") for k in range(w.group)]
    from certssb.ensemble.shuffle import DeviceShuffler
    from certssb.ensemble.device import host_to_device
    out = {}
    shuffler = DeviceShuffler(jobs_dev, epoch_images, w.device)
    for name, make in (("host", lambda e: host_to_device(torch.stack([j.permutation(e, epoch_images)
                                                                       for j in jobs_host]), w.device)),
                       ("device", shuffler.orders)):
        make(0)
        _sync(w.device)
        t0 = time.perf_counter()
        for e in range(1, 4):
            make(e)
        _sync(w.device)
        out[name] = (time.perf_counter() - t0) / 3
    return (f"shuffle per epoch ({w.group} models x {epoch_images} images): host {1e3 * out['host']:.1f} ms, "
            f"device {1e3 * out['device']:.1f} ms")


def engine_choice(w: Workload) -> str:
    """What ``vectorise=measure`` picks for this workload (CUDA only)."""
    if w.device.type != "cuda":
        return "vectorise=measure: CUDA only (on the CPU it is auto)"
    spec = FitSpec(1, w.batch, 1e-3, w.device, w.precision)
    engine, timings = measure_engine(w.factory, w.x, w.y, w.sigmas, spec, w.group, steps=min(5, w.steps))
    return f"vectorise=measure picks {engine} ({', '.join(f'{k} {1e3 * v:.2f} ms/step' for k, v in timings.items())})"


def profile_configs(w: Workload, steps: int = 3, dry_run: bool = False) -> list[str]:
    """Profiler summaries of ``steps`` training steps of the :data:`PROFILED` configurations."""
    lines = []
    for label, speed, channels_last in CONFIGS:
        if label not in PROFILED:
            continue
        why = skip_reason(speed, w.device, dry_run)
        if why is not None:
            lines.append(f"profile [{w.name}, {label}]: {why}")
            continue
        trainer = w.trainer(speed, channels_last)
        batches = [b for e in range(2) for b in trainer.batches(e)]
        warm = min(4, len(batches) // 2)
        for idx, mask in batches[:warm]:  # warm-up (and the CUDA graph's capture)
            trainer.step(idx, mask)
        it = itertools.cycle(batches[warm:])
        lines += profile_steps(lambda: trainer.step(*next(it)), steps, w.device,
                               f"{w.name}, {label}, {w.group} models x batch {w.batch}")
        del trainer
    return lines
