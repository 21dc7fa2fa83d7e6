"""Benchmark: one-at-a-time vs vectorised ensemble training on the same work, in one process.

    python -m certssb.tools.bench --setting digits|digits_cnn|partition|mnist_cnn|cifar_resnet [--quick]
                            [--members N] [--repeats R]
                            [--precision auto|fp32|bf16] [--members-list 16,64,256 --group-size G]

Each repeat trains the same members on the same data with both paths (interleaved, so a load
spike on a shared machine hits both), through the public ``train_members`` (noise, shuffles and
checkpoint writes included). Both paths are warmed up first, the vectorised one at the real group
size. Reports the median wall time, members/s and samples/s, the achieved FLOP/s (one training
step counted with ``FlopCounterMode``) next to the device's measured matmul FLOP/s in the
precision the forward passes use (bf16, or float32 with torch's TF32 setting), the peak memory of
each path, the extrapolated wall time of the paper-scale run (1000 members x 20 epochs x 12,000
images) and finally ``speedup=<ratio>``. On CUDA the settings' ``gpu`` sizes apply (more members,
larger groups); ``--members``/``--group-size``/``--images`` override them.

``--setting partition`` is the count-certified family's case (DPA, ``ensemble=partition``):
``--members`` models (200) each trained without noise on its own part of the embedded digits
(``ens.training_subsets``, about 9 images a part, so one step per epoch), vectorised (groups of one
part size, as ``train_members`` plans them) against one part at a time.

Data: the pipeline's own loaders (``certssb.dataset.load_dataset``): sklearn digits; for
``mnist_cnn`` Fashion-MNIST's T-shirt/top vs trouser pair (12,000 training images) where its idx
files are found; for ``cifar_resnet`` CIFAR-10 where found; otherwise synthetic data of the same
shape, labelled as such in the output.

``--members-list N1,N2,...`` instead trains the vectorised path once for each ensemble size with
the same group size and prints the peak memory of each: it should be flat in N (bounded by the
group size, the batch and the per-group noisy-data cache), since groups run one after another and
each member is written to its checkpoint as soon as its group finishes.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
import dataclasses

import torch
import torch.nn.functional as F

from certssb.dataset import load_dataset
from certssb.ensemble import CheckpointStore, resolve_device, train_members
from certssb.ensemble.precision import resolve_precision
from certssb.ensemble.training_data import cache_budget_bytes
from certssb.config import load_option
from certssb.errors import DataNotFoundError
from certssb.model import has_batchnorm, model_factory
from certssb.ensemble.training_data import TrainingData

PAPER = {"members": 1000, "epochs": 20, "images": 12000}

SETTINGS = {
    #            model              batch members epochs repeats group  quick: (members, epochs, repeats, n)
    # the default digits model (conf/model/for_digits.yaml) and the small digits CNN
    "digits": dict(model="mlp", batch=128, members=64, epochs=5, repeats=3, group=64,
                   quick=dict(members=64, epochs=3, repeats=3, group=64)),
    "digits_cnn": dict(model="digits_cnn", batch=64, members=32, epochs=2, repeats=3, group=32,
                       quick=dict(members=16, epochs=1, repeats=3, group=16)),
    "mnist_cnn": dict(model="mnist_cnn", batch=128, members=8, epochs=1, repeats=3, group=8, n=12000,
                      quick=dict(members=4, epochs=1, repeats=1, n=2000),
                      gpu=dict(members=128, group=128, n=12000)),
    # DPA (ensemble=partition): 200 models, each on its own part of the embedded digits (about 9 images)
    "partition": dict(model="mlp", batch=128, members=200, epochs=10, repeats=3, group=None,
                      quick=dict(epochs=3, repeats=3)),
    "cifar_resnet": dict(model="preact_resnet32", batch=64, members=4, epochs=1, repeats=3, group=4, n=2048,
                         quick=dict(members=2, epochs=1, repeats=1, n=256),
                         gpu=dict(members=32, group=32, n=10000)),
}


def load_data(setting: str, n: int | None, seed: int = 0):
    """(x [n, C, H, W] float32 in [0, 1], y int64, num_classes, description), read with the
    pipeline's loaders (small sets: converted to float32 once); synthetic data of the same shape (said so) where the files are absent.
    """
    if setting in ("digits", "digits_cnn", "partition"):
        d = load_dataset(load_option("dataset", "digits", test_fraction=0.0001), seed)
        return d.x_train.to_float(), d.y_train, d.num_classes, f"sklearn digits, {len(d.x_train)} images 8x8"
    name, classes, shape, what = (
        ("fashion_mnist", [0, 1], (1, 28, 28), "Fashion-MNIST T-shirt/top vs trouser")
        if setting == "mnist_cnn"
        else ("cifar10", [0, 1], (3, 32, 32), "CIFAR-10 airplane vs automobile")
    )
    try:
        d = load_dataset(load_option("dataset", name, classes=classes, train_size=n), seed)
        return d.x_train.to_float(), d.y_train, 2, f"{what} ({len(d.x_train)} training images)"
    except DataNotFoundError as exc:
        print(f"note: {name} not found ({str(exc)[:80]}...); using SYNTHETIC data", flush=True)
    gen = torch.Generator().manual_seed(seed)
    n = n or 2048
    return (torch.rand((n,) + shape, generator=gen), torch.randint(0, 2, (n,), generator=gen), 2,
            f"SYNTHETIC uniform {'x'.join(map(str, shape))}, {n} images (not {what})")


def matmul_flops(device: torch.device, size: int = 2048, reps: int = 3, dtype: torch.dtype = torch.float32) -> float:
    """Best-of-``reps`` FLOP/s of a ``size`` x ``size`` matmul in ``dtype`` (float32 under torch's
    current TF32 setting)."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    a @ b
    _sync(device)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size ** 3 / best


def step_flops(factory, x, y, batch: int, device) -> float:
    """FLOPs of one forward+backward training step of one member on ``batch`` samples."""
    from torch.utils.flop_counter import FlopCounterMode
    model = factory().to(device).train()
    xb, yb = x[:batch].to(device), y[:batch].to(device)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(xb), yb).backward()
    return float(counter.get_total_flops())


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakMemory:
    """Peak memory above the starting level: CUDA allocator peak, or sampled RSS on CPU.

    ``absolute``: the peak itself (CUDA: max allocated; CPU: the process's peak RSS while sampled).
    """

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            self.start = self.peak = _rss_bytes()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.absolute = torch.cuda.max_memory_allocated(self.device)
            self.bytes = self.absolute - self.start
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _rss_bytes())
            self.absolute = self.peak
            self.bytes = self.peak - self.start
        return False


def _fmt_time(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


@dataclasses.dataclass
class Bench:
    """One benchmark's work: data, model, the two paths' settings and the sizes."""

    setting: str
    model: str
    device: torch.device
    x: torch.Tensor
    y: torch.Tensor
    sigmas: torch.Tensor
    desc: str
    factory: object
    members: int
    epochs: int
    batch: int
    repeats: int
    group: int | None
    cfg_loop: object
    cfg_vec: object
    seed: int = 0
    subsets: list | None = None  # the partition setting: each model's part of the training set

    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def samples(self) -> int:
        """Training samples seen per path and repeat (every model's epochs over its data)."""
        if self.subsets is None:
            return self.members * self.epochs * self.n
        return self.epochs * sum(int(s.numel()) for s in self.subsets)

    def run(self, cfg, members: int | None = None):
        """(wall seconds, peak memory increase, member 0's state, absolute peak) of one
        ``train_members`` call of ``members`` models into a fresh store."""
        with tempfile.TemporaryDirectory(prefix="certssb-bench-") as tmp:
            store = CheckpointStore(tmp, "bench")
            with PeakMemory(self.device) as mem:
                _sync(self.device)
                t0 = time.perf_counter()
                train_members(
                    self.factory,
                    TrainingData(self.x, self.y, self.sigmas, self.subsets),
                    cfg,
                    self.seed,
                    range(members or self.members),
                    store,
                    device=self.device,
                    progress=False,
                )
                _sync(self.device)
                wall = time.perf_counter() - t0
            state = store.load(0)
        return wall, mem.bytes, state, mem.absolute


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m certssb.tools.bench",
        description=("Benchmark the vectorised ensemble trainer against the one-at-a-time baseline on the same "
                     "members and data, in one process: members/s, samples/s, achieved FLOP/s against the "
                     "device's matmul FLOP/s, peak memory and the projected paper-scale time, ending with "
                     "speedup=<ratio>. --setting partition trains 200 DPA parts of the embedded digits (the "
                     "count family). Example: python -m certssb.tools.bench --setting digits --quick"))
    ap.add_argument("--setting", choices=sorted(SETTINGS), required=True,
                    help="model and data: digits (MLP on digits), digits_cnn, mnist_cnn (Fashion-MNIST T-shirt vs "
                         "trouser, or synthetic), cifar_resnet (PreAct ResNet-32 on CIFAR-10, or synthetic), "
                         "partition (200 DPA parts of the embedded digits, MLP)")
    ap.add_argument("--quick", action="store_true", help="a smaller run (under 2 minutes for digits on 2 CPU cores)")
    ap.add_argument("--members", type=int, default=None,
                    help="ensemble size N trained by each path (partition: parts; default: per setting; larger on "
                         "CUDA)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed repeats of each path, interleaved; the median is reported (default: per setting)")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs per member (default: per setting)")
    ap.add_argument("--group-size", type=int, default=None,
                    help="members per vectorised group (default: per setting; partition: the trainer's own choice)")
    ap.add_argument("--batch-size", type=int, default=None, help="training batch size (default: per setting)")
    ap.add_argument("--images", type=int, default=None, help="training images (mnist_cnn / cifar_resnet)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when usable, else the CPU), cpu or cuda")
    ap.add_argument("--sigma", type=float, default=0.25,
                    help="every member's training noise level (default 0.25; not used by the partition setting)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the data subsample and the member noise (default 0)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                    help="ensemble.precision for both paths (auto: bf16 + channels-last for conv models on CUDA)")
    ap.add_argument("--members-list", default=None, metavar="N1,N2,...",
                    help="instead of the comparison: train the vectorised path for each ensemble size N with the "
                         "same group size and print each peak memory (it should not grow with N)")
    return ap


def _parse_sizes(ap, text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        sizes = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        ap.error(f"--members-list must be comma-separated integers, got {text!r}")
    if not sizes or min(sizes) < 1:
        ap.error(f"--members-list must list positive integers, got {text!r}")
    return sizes


def prepare(args, sizes: list[int] | None) -> Bench:
    """The benchmark's data, model and settings of both paths from the command line."""
    st = dict(SETTINGS[args.setting])
    device = resolve_device(args.device)
    quick, gpu = st.pop("quick"), st.pop("gpu", {})
    if args.quick:
        st.update(quick)
    if device.type == "cuda":
        st.update(gpu)
    members = args.members or st["members"]
    x, y, num_classes, desc = load_data(args.setting, args.images or st.get("n"), args.seed)
    partition = args.setting == "partition"
    sigmas = torch.full((len(x),), 0.0 if partition else float(args.sigma))
    factory = model_factory(load_option("model", st["model"]), tuple(x.shape[1:]), num_classes)
    group = args.group_size or (None if partition else min(st["group"], members if sizes is None else min(sizes)))
    base = dict(epochs=args.epochs or st["epochs"], batch_size=args.batch_size or st["batch"], lr=1e-3,
                eval_batch_size=512, device=str(device), precision=args.precision)
    if partition:
        option = lambda **kw: load_option(
            "ensemble", "partition", n_parts=members, key="index", **base, **kw
        )  # noqa: E731
    else:
        n_members = members if sizes is None else max(sizes)
        option = lambda **kw: load_option("ensemble", "gaussian", n_members=n_members, **base, **kw)  # noqa: E731
    cfg_loop = option(vectorise="false", group_size=None)
    # BatchNorm/compute-bound models would take the loop path under `auto` on a CPU; the benchmark forces vmap.
    cfg_vec = option(vectorise="true", group_size=group)
    b = Bench(args.setting, st["model"], device, x, y, sigmas, desc, factory, members, base["epochs"],
              base["batch_size"], args.repeats or st["repeats"], group, cfg_loop, cfg_vec, args.seed)
    if partition:
        b.subsets = cfg_vec.training_subsets(x, y, args.seed)
    return b


def print_header(b: Bench, precision: str) -> None:
    probe = b.factory()
    dev_name = (torch.cuda.get_device_name(b.device) if b.device.type == "cuda"
                else f"cpu ({torch.get_num_threads()} threads)")
    print(f"setting={b.setting} model={b.model} params={sum(p.numel() for p in probe.parameters())} "
          f"batchnorm={has_batchnorm(probe)}")
    noise = "no noise (count-certified parts)" if b.subsets is not None else f"sigma={float(b.sigmas[0])}"
    print(f"data: {b.desc}; {noise}")
    print(f"device: {dev_name}; torch {torch.__version__}")
    print(
        f"precision: ensemble.precision={precision} -> {resolve_precision(b.cfg_vec.precision, probe, b.device).name} "
        f"(forward passes; parameters, gradients and Adam state float32)"
    )


def print_work(b: Bench) -> tuple[float, float]:
    """Print the work and the device's matmul FLOP/s; returns (training FLOPs per repeat, peak)."""
    if b.subsets is None:
        what = f"{b.members} members x {b.epochs} epochs x {b.n} images"
    else:
        sizes = sorted({int(s.numel()) for s in b.subsets})
        what = (f"{b.members} parts (sizes {', '.join(map(str, sizes))}) x {b.epochs} epochs, each model on its own "
                f"part of {b.n} images")
    group = b.group if b.group is not None else "chosen by the trainer"
    print(f"work per path and repeat: {what}, batch {b.batch}; vectorised group size {group}; repeats {b.repeats}")
    from certssb.ensemble.train import choose_vectorise
    probe = b.factory()
    auto = choose_vectorise(dataclasses.replace(b.cfg_vec, vectorise="auto"), probe, tuple(b.x.shape[1:]), b.device)
    print(f"vectorise=auto would {'vmap' if auto else 'train one at a time'} here; the benchmark forces vmap")
    mm_dtype = resolve_precision(b.cfg_vec.precision, probe, b.device).autocast_dtype or torch.float32
    peak = matmul_flops(b.device, dtype=mm_dtype)
    tf32 = (" (TF32 on)" if b.device.type == "cuda" and mm_dtype == torch.float32
            and torch.backends.cuda.matmul.allow_tf32 else "")
    flops_per_sample = step_flops(b.factory, b.x, b.y, min(b.batch, b.n), b.device) / min(b.batch, b.n)
    print(f"device {str(mm_dtype).replace('torch.', '')} matmul{tf32}: {peak / 1e9:.1f} GFLOP/s (the precision the "
          f"forward passes use); one member-sample training step: {flops_per_sample / 1e6:.2f} MFLOP", flush=True)
    return flops_per_sample * b.samples, peak


def compare(b: Bench):
    """Warm both paths up, then ``repeats`` interleaved runs; (times, peak memory, member 0's states)."""
    # Warm-up (first-call costs: allocator, oneDNN/cuDNN plans for the shapes of the real group size, vmap).
    if b.subsets is None:
        wn = min(b.n, 4 * b.batch)
        warm = dataclasses.replace(b, x=b.x[:wn], y=b.y[:wn], sigmas=b.sigmas[:wn])
    else:
        warm = b
    warm.run(dataclasses.replace(b.cfg_loop, epochs=1), 1)
    warm.run(dataclasses.replace(b.cfg_vec, epochs=1), min(b.group or 64, b.members))
    times = {"one-at-a-time": [], "vectorised": []}
    mems = {"one-at-a-time": [], "vectorised": []}
    states = {}
    for r in range(b.repeats):
        for name, cfg in (("one-at-a-time", b.cfg_loop), ("vectorised", b.cfg_vec)):
            wall, mem, state, _ = b.run(cfg)
            times[name].append(wall)
            mems[name].append(mem)
            states[name] = state
            print(f"  repeat {r + 1}/{b.repeats} {name:>14}: {wall:.2f} s", flush=True)
    return times, mems, states


def report(b: Bench, times, mems, states, total_flops: float, peak: float) -> float:
    """Print each path's medians and figures; returns the ratio of the median times."""
    diff = max(float((states["one-at-a-time"][k].float() - states["vectorised"][k].float()).abs().max())
               for k in states["vectorised"])
    print(f"max |parameter difference| of member 0 between the paths: {diff:.2e}")
    paper_work = PAPER["members"] * PAPER["epochs"] * PAPER["images"]
    work = b.samples
    mem_label = "CUDA max allocated" if b.device.type == "cuda" else "peak RSS increase"
    med = {}
    for name in times:
        t = med[name] = statistics.median(times[name])
        paper = ("" if b.subsets is not None else
                 f" | paper scale (1000 x 20 ep x 12,000 img, this model): {_fmt_time(t / work * paper_work)}")
        print(f"{name:>14}: median {t:.2f} s | {b.members / t:.3f} members/s | {work / t:,.0f} samples/s | "
              f"{total_flops / t / 1e9:.2f} GFLOP/s ({100 * total_flops / t / peak:.1f}% of matmul) | "
              f"{mem_label} {max(mems[name]) / 2**20:.0f} MiB{paper}")
    return med["one-at-a-time"] / med["vectorised"]


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    sizes = _parse_sizes(ap, args.members_list)
    if sizes is not None and args.setting == "partition":
        ap.error("--members-list is for the Gaussian settings")
    if args.threads:
        torch.set_num_threads(args.threads)
    b = prepare(args, sizes)
    print_header(b, args.precision)
    if sizes is not None:
        return members_scan(b, sizes)
    total_flops, peak = print_work(b)
    times, mems, states = compare(b)
    ratio = report(b, times, mems, states, total_flops, peak)
    print(f"speedup={ratio:.2f}")
    return 0


def members_scan(b: Bench, sizes: list[int]) -> int:
    """Vectorised training of N members for each N in ``sizes`` (same group size): peak memory per N."""
    group, n = b.group, b.n
    per_member_cache = b.x.numel() * b.x.element_size()
    budget = cache_budget_bytes(b.device)
    cached = group * per_member_cache <= budget and float(b.sigmas.abs().max()) > 0
    print(f"members scan: vectorised, group size {group}, {b.epochs} epoch(s) x {n} images, batch {b.batch}; "
          f"noisy-data cache per group {group} x {per_member_cache / 2**20:.2f} MiB = "
          f"{group * per_member_cache / 2**20:.1f} MiB ({'materialised' if cached else 'generated per batch'}; "
          f"budget {budget / 2**20:.0f} MiB, per group, independent of N)", flush=True)
    mem_label = "CUDA max allocated" if b.device.type == "cuda" else "peak RSS"
    wn = min(n, 4 * b.batch)  # warm-up (allocator, oneDNN/cuDNN plans, vmap) so the first N is not penalised
    dataclasses.replace(b, x=b.x[:wn], y=b.y[:wn], sigmas=b.sigmas[:wn]).run(b.cfg_vec, min(group, min(sizes)))
    rows = []
    for size in sizes:
        wall, inc, _, absolute = b.run(b.cfg_vec, size)
        rows.append((size, wall, inc, absolute))
        print(f"  N={size:>5} ({-(-size // group)} groups): {wall:.2f} s | {size / wall:.2f} members/s | "
              f"{mem_label} {absolute / 2**20:.0f} MiB (increase during training {inc / 2**20:.0f} MiB)", flush=True)
    lo, hi = min(r[3] for r in rows), max(r[3] for r in rows)
    print(f"peak memory over N={sizes[0]}..{sizes[-1]}: {lo / 2**20:.0f}..{hi / 2**20:.0f} MiB "
          f"(max/min {hi / max(lo, 1):.2f}; members x{sizes[-1] / sizes[0]:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
