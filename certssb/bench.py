"""Benchmark: one-at-a-time vs vectorised ensemble training on the same work, in one process.

    python -m certssb.bench --setting digits|mnist_cnn|cifar_resnet [--quick] [--members N] [--repeats R]

Each repeat trains the same members on the same data with both paths (interleaved, so a load
spike on a shared machine hits both), through the public ``train_members`` (noise, shuffles and
checkpoint writes included). Reports the median wall time, members/s and samples/s, the achieved
FLOP/s (one training step counted with ``FlopCounterMode``) next to the device's measured float32
matmul FLOP/s, the peak memory of each path, the extrapolated wall time of the paper-scale run
(1000 members x 20 epochs x 12,000 images) and finally ``speedup=<ratio>``.
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from certssb.ensemble import CheckpointStore, resolve_device, train_members
from certssb.models import has_batchnorm, model_factory

PAPER = {"members": 1000, "epochs": 20, "images": 12000}
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

SETTINGS = {
    #            model              batch members epochs repeats group  quick: (members, epochs, repeats, n)
    # the default digits model (conf/model/for_digits.yaml) and the small digits CNN
    "digits": dict(model="mlp", batch=128, members=32, epochs=2, repeats=3, group=32,
                   quick=dict(members=16, epochs=1, repeats=3, group=16)),
    "digits_cnn": dict(model="digits_cnn", batch=64, members=32, epochs=2, repeats=3, group=32,
                       quick=dict(members=16, epochs=1, repeats=3, group=16)),
    "mnist_cnn": dict(model="mnist_cnn", batch=128, members=8, epochs=1, repeats=3, group=8, n=12000,
                      quick=dict(members=4, epochs=1, repeats=1, n=2000)),
    "cifar_resnet": dict(model="preact_resnet32", batch=64, members=4, epochs=1, repeats=3, group=4, n=2048,
                         quick=dict(members=2, epochs=1, repeats=1, n=256)),
}


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_data(setting: str, n: int | None, seed: int = 0):
    """(x [n, C, H, W] float32 in [0, 1], y int64, num_classes, description)."""
    if setting in ("digits", "digits_cnn"):
        from sklearn.datasets import load_digits
        d = load_digits()
        x = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
        return x, torch.tensor(d.target, dtype=torch.int64), 10, f"sklearn digits, {len(x)} images 8x8"
    gen = torch.Generator().manual_seed(seed)
    if setting == "mnist_cnn":
        imgs, labs = FASHION_DIR / "train-images-idx3-ubyte.gz", FASHION_DIR / "train-labels-idx1-ubyte.gz"
        if imgs.is_file() and labs.is_file():
            x = torch.from_numpy(_read_idx(imgs)[:n].astype(np.float32) / 255.0).unsqueeze(1)
            y = torch.from_numpy(_read_idx(labs)[:n].astype(np.int64))
            return x, y, 10, f"Fashion-MNIST (first {len(x)} training images) from {FASHION_DIR}"
        print(f"note: Fashion-MNIST not found in {FASHION_DIR}; using synthetic 28x28 data", flush=True)
        return (torch.rand(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen), 10,
                f"synthetic uniform 28x28, {n} images")
    print("note: CIFAR-10 is not read by the benchmark; using synthetic 32x32x3 data", flush=True)
    return (torch.rand(n, 3, 32, 32, generator=gen), torch.randint(0, 2, (n,), generator=gen), 2,
            f"synthetic uniform 32x32x3, {n} images")


def matmul_flops(device: torch.device, size: int = 2048, reps: int = 3) -> float:
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
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
    """Peak memory above the starting level: CUDA allocator peak, or sampled RSS on CPU."""

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
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self.start
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _rss_bytes())
            self.bytes = self.peak - self.start
        return False


def run_once(factory, x, y, sigmas, cfg, members: int, device, seed: int):
    with tempfile.TemporaryDirectory(prefix="certssb-bench-") as tmp:
        store = CheckpointStore(tmp, "bench")
        with PeakMemory(device) as mem:
            _sync(device)
            t0 = time.perf_counter()
            train_members(factory, x, y, sigmas, cfg, seed, range(members), store, device=device, progress=False)
            _sync(device)
            wall = time.perf_counter() - t0
        state = store.load(0)
    return wall, mem.bytes, state


def _fmt_time(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m certssb.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--setting", choices=sorted(SETTINGS), required=True)
    ap.add_argument("--quick", action="store_true", help="a smaller run (under 2 minutes for digits on 2 CPU cores)")
    ap.add_argument("--members", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--group-size", type=int, default=None, help="members per vmap group (default: per setting)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--images", type=int, default=None, help="training images (mnist_cnn / cifar_resnet)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--sigma", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    st = dict(SETTINGS[args.setting])
    if args.quick:
        st.update(st.pop("quick"))
    members = args.members or st["members"]
    repeats = args.repeats or st["repeats"]
    epochs = args.epochs or st["epochs"]
    batch = args.batch_size or st["batch"]
    n = args.images or st.get("n")
    device = resolve_device(args.device)
    if args.setting == "cifar_resnet" and device.type == "cuda" and not args.quick and args.images is None:
        n = 12000
    x, y, num_classes, desc = load_data(args.setting, n, args.seed)
    n = len(x)
    sigmas = torch.full((n,), float(args.sigma))
    factory = model_factory(SimpleNamespace(name=st["model"]), tuple(x.shape[1:]), num_classes)
    probe = factory()
    n_params = sum(p.numel() for p in probe.parameters())
    group = args.group_size or min(st["group"], members)
    base_cfg = dict(epochs=epochs, batch_size=batch, lr=1e-3, eval_batch_size=512, device=str(device))
    cfg_loop = SimpleNamespace(vectorise="false", group_size=None, **base_cfg)
    # BatchNorm models would take the loop path under `auto`; the benchmark forces vmap for them.
    cfg_vec = SimpleNamespace(vectorise="true", group_size=group, **base_cfg)

    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"setting={args.setting} model={st['model']} params={n_params} batchnorm={has_batchnorm(probe)}")
    print(f"data: {desc}; sigma={args.sigma}")
    print(f"device: {dev_name}; torch {torch.__version__}")
    print(f"work per path and repeat: {members} members x {epochs} epochs x {n} images, batch {batch}; "
          f"vectorised group size {group}; repeats {repeats}")

    from certssb.ensemble.train import choose_vectorise
    auto = choose_vectorise(SimpleNamespace(vectorise="auto"), probe, tuple(x.shape[1:]), device)
    print(f"vectorise=auto would {'vmap' if auto else 'train one at a time'} here; the benchmark forces vmap")
    peak = matmul_flops(device)
    flops_per_sample = step_flops(factory, x, y, batch, device) / batch
    total_flops = flops_per_sample * n * epochs * members
    print(f"device float32 matmul: {peak / 1e9:.1f} GFLOP/s; one member-sample training step: "
          f"{flops_per_sample / 1e6:.2f} MFLOP", flush=True)

    # Warm-up both paths on a small slice (first-call costs: allocator, oneDNN/cuDNN plans, vmap).
    warm = SimpleNamespace(**{**vars(cfg_vec), "epochs": 1})
    wn = min(n, 4 * batch)
    for c in (SimpleNamespace(**{**vars(cfg_loop), "epochs": 1}), warm):
        run_once(factory, x[:wn], y[:wn], sigmas[:wn], c, min(2, members), device, args.seed)

    times = {"one-at-a-time": [], "vectorised": []}
    mems = {"one-at-a-time": [], "vectorised": []}
    states = {}
    for r in range(repeats):
        for name, cfg in (("one-at-a-time", cfg_loop), ("vectorised", cfg_vec)):
            wall, mem, state = run_once(factory, x, y, sigmas, cfg, members, device, args.seed)
            times[name].append(wall)
            mems[name].append(mem)
            states[name] = state
            print(f"  repeat {r + 1}/{repeats} {name:>14}: {wall:.2f} s", flush=True)

    diff = max(float((states["one-at-a-time"][k].float() - states["vectorised"][k].float()).abs().max())
               for k in states["vectorised"])
    print(f"max |parameter difference| of member 0 between the paths: {diff:.2e}")
    paper_work = PAPER["members"] * PAPER["epochs"] * PAPER["images"]
    work = members * epochs * n
    med = {}
    for name in times:
        t = statistics.median(times[name])
        med[name] = t
        mem_label = "CUDA max allocated" if device.type == "cuda" else "peak RSS increase"
        print(f"{name:>14}: median {t:.2f} s | {members / t:.3f} members/s | {work / t:,.0f} samples/s | "
              f"{total_flops / t / 1e9:.2f} GFLOP/s ({100 * total_flops / t / peak:.1f}% of matmul) | "
              f"{mem_label} {max(mems[name]) / 2**20:.0f} MiB | "
              f"paper scale (1000 x 20 ep x 12,000 img, this model): {_fmt_time(t / work * paper_work)}")
    ratio = med["one-at-a-time"] / med["vectorised"]
    print(f"speedup={ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
