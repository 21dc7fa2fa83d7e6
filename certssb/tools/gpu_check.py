"""One-shot GPU check: validates the GPU paths and measures them in one short run.

    python -m certssb.tools.gpu_check                      # on a GPU (make gpu-check): about 5 minutes on one H100
    python -m certssb.tools.gpu_check --dry-run --device cpu   # tiny sizes on the CPU (make gpu-check DRY=1)
    python -m certssb.tools.gpu_check --only switches,profile  # a subset (names below)

Prints one ``PASS``/``FAIL`` line per check with its figures, then ``gpu-check: K/M checks
passed`` (exit code 0 only when all pass):

1. ``environment``: device name, torch, CUDA and cuDNN versions, bf16 support.
2. ``cuda-tests``: the tests marked ``cuda`` (pytest, in a subprocess).
3. ``mnist-vectorised``: the MNIST CNN trained one at a time and vectorised (vectorised at
   N >= 100 members on a GPU), members/s of each and their ratio (target >= 10x), the group size
   the measured trial step chose, peak memory; the projected time of N = 1000 members x 20 epochs
   x 12,000 images (target < 15 min); achieved FLOP/s and MFU of each path against the card's
   dense peak in the training precision (``certssb/tools/perf.py``: datasheet, or a measured
   matmul for a card not in its table).
4. ``precision``: the MNIST CNN vectorised and one at a time in ``fp32`` and in ``auto`` (bf16
   on CUDA; channels-last on the one-at-a-time path): members/s of each.
5. ``cifar-resnet``: the PreAct ResNet-32 (BatchNorm, bf16 under ``auto`` on CUDA) one at a time
   and vectorised: members per hour at 10 epochs x 10,000 images (target N = 1000 in < 1 h),
   FLOP/s and MFU.
6. ``determinism``: ``ensemble.deterministic=true``: a rerun and a resumed run (another
   member order, leftovers of an interrupted run) give bit-identical members; with the default
   settings the difference between group sizes is reported.
7. ``multirun``: a two-job ``hydra/launcher=certssb_gpu`` sweep of the real pipeline
   (``jobs_per_gpu=2``): both complete on the device.
8. ``switches``: the speed switches of ``conf/ensemble/_training.yaml`` against the reference
   vectorised step, for the MNIST CNN and the PreAct ResNet-32 at the group size the trial step
   chooses (capped): ms/step, members/s, FLOP/s, MFU and the ratio to the reference, per switch
   (``certssb/tools/gpu_switches.py``); the host and device shuffles' cost per epoch; what
   ``vectorise=measure`` picks. Configurations left when ``--budget-s`` is spent are skipped (said
   so). Fails only when a switch raises.
9. ``profile``: ``torch.profiler`` summaries of single training steps (reference, grouped, and
   grouped with fused Adam, padding and CUDA graphs): wall time against kernel busy time (launch
   gaps), kernels per step, the top kernels, memory.

Data: the pipeline's loaders where the files exist (Fashion-MNIST, CIFAR-10); otherwise
synthetic data of the same shape, and every line says which. The multirun writes a small
synthetic Fashion-MNIST-format dataset (idx files) into a temporary folder. Targets are printed
next to the figures; a missed target is a FAIL of that check.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
import dataclasses

import numpy as np
import torch
from certssb.ensemble.training_data import TrainingData

REPO = Path(__file__).resolve().parents[2]
CUDA_TEST_FILES = ("tests/test_ensemble_gpu.py", "tests/test_ensemble_group_size.py", "tests/test_ensemble_device.py",
                   "tests/test_sigma_repro.py", "tests/test_ensemble_noise.py", "tests/test_ensemble_speed_gpu.py")

FULL = dict(
    mnist_images=12000,
    mnist_loop=10,
    mnist_vec=200,
    prec_vec=64,
    cifar_images=10000,
    cifar_loop=3,
    cifar_vec=64,
    det_images=2048,
    det_members=8,
    det_group=4,
    sweep_members=32,
    sweep_train=2000,
    sweep_test=200,
    sweep_epochs=2,
    sw_mnist_group=200,
    sw_resnet_group=64,
    sw_steps=8,
    sw_mnist_batch=128,
    sw_resnet_batch=64,
)  # switches: at most the group sizes of mnist-vectorised and cifar-resnet
DRY = dict(mnist_images=128, mnist_loop=1, mnist_vec=3, prec_vec=2, cifar_images=16, cifar_loop=1, cifar_vec=2,
           det_images=64, det_members=4, det_group=2, sweep_members=2, sweep_train=60, sweep_test=20,
           sweep_epochs=1, sw_mnist_group=2, sw_resnet_group=2, sw_steps=2, sw_mnist_batch=8, sw_resnet_batch=4)
BUDGET_S = 300  # the whole check on one H100; switch measurements past it are skipped
TARGETS = dict(mnist_speedup=10.0, mnist_n1000_s=15 * 60, cifar_members_per_hour=1000)


class Checks:
    """Runs the checks, prints a line each, counts the passes."""

    def __init__(self):
        self.results: list[tuple[str, bool]] = []

    def run(self, name: str, fn) -> None:
        t0 = time.perf_counter()
        try:
            ok, text = fn()
        except Exception as exc:  # one line per failure; the traceback goes to stderr
            traceback.print_exc(file=sys.stderr)
            ok, text = False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        self.results.append((name, ok))
        print(f"{'PASS' if ok else 'FAIL'} {name}: {text} [{time.perf_counter() - t0:.0f} s]", flush=True)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cfg(device, **kw):
    """The ``ensemble=gaussian`` settings with the check's knobs."""
    from certssb.config import load_option

    base = dict(epochs=1, batch_size=128, lr=1e-3, vectorise="auto", group_size=None, eval_batch_size=512,
                device=str(device), precision="auto", n_members=1000, deterministic=False)
    base.update(kw)
    return load_option("ensemble", "gaussian", **base)


def _train(factory, x, y, sigmas, cfg, members, device, directory):
    """(wall seconds, peak bytes, meta of the first member, store) of one ``train_members`` call."""
    from certssb.ensemble import CheckpointStore, train_members
    from certssb.tools.bench import PeakMemory

    store = CheckpointStore(directory, "gpu-check")
    with PeakMemory(device) as mem:
        _sync(device)
        t0 = time.perf_counter()
        train_members(factory, TrainingData(x, y, sigmas), cfg, 0, members, store, device=device, progress=False)
        _sync(device)
        wall = time.perf_counter() - t0
    first = list(members)[0]
    return wall, mem.absolute, store.load_meta(first), store


def _throughput(factory, x, y, batch: int, device):
    """(FLOPs of one member-sample's training step, the card's dense peak in the precision that
    ``ensemble.precision=auto`` trains in)."""
    from certssb.ensemble.precision import resolve_precision
    from certssb.tools.bench import step_flops
    from certssb.tools.perf import peak_for, training_precision
    b = min(batch, len(x))
    precision = resolve_precision("auto", factory(), device)
    return step_flops(factory, x, y, b, device) / b, peak_for(device, training_precision(precision.autocast_dtype,
                                                                                          device.type))


def _mfu(fps: float, peak, paths: dict) -> str:
    """``; FLOP/s and MFU: <path> ..., peak ...`` for ``paths = {name: (member-samples, seconds)}``."""
    from certssb.tools.perf import mfu_text
    parts = [f"{name} {mfu_text(fps, samples, seconds, peak)}" for name, (samples, seconds) in paths.items()]
    return f"; model FLOP/s: {'; '.join(parts)} ({fps / 1e6:.2f} MFLOP per member-sample; peak {peak.label()})"


def _fmt_s(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else (f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h")


def check_environment(device):
    from certssb.ensemble import device_report
    rep = device_report(device, "-")
    bf16 = torch.cuda.is_bf16_supported() if device.type == "cuda" else None
    text = (f"{rep['name']}; torch {rep['torch']}, CUDA {rep['cuda']}, cuDNN {rep['cudnn']}, bf16 {bf16}, "
            f"CUDA_VISIBLE_DEVICES={rep['cuda_visible_devices']}")
    return device.type == "cuda" or DRY_RUN, text


def check_cuda_tests(device):
    files = [f for f in CUDA_TEST_FILES if (REPO / f).exists()]
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": os.pathsep.join(
        [str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", *files],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else proc.stderr.strip()[-200:]
    if proc.returncode != 0:
        failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
        sys.stderr.write(proc.stdout[-6000:] + proc.stderr[-3000:])
        return False, f"{last}; {'; '.join(failed[:5])}"
    ok = device.type == "cuda" and " skipped" not in last or DRY_RUN
    return ok, last + ("" if device.type == "cuda" else " (no CUDA: skipped)")


def check_mnist(device, sizes, tmp):
    from certssb.config import load_option
    from certssb.model import model_factory
    from certssb.tools.bench import load_data
    x, y, _, desc = load_data("mnist_cnn", sizes["mnist_images"], 0)
    n = len(x)
    sig = torch.full((n,), 0.25)
    f = model_factory(load_option("model", "mnist_cnn"), (1, 28, 28), 2)
    loop_cfg = _cfg(device, vectorise="false")
    vec_cfg = _cfg(device, vectorise="true")
    if not DRY_RUN:  # warm-up: both paths, the vectorised one at its real group size (on a slice)
        _train(f, x[:512], y[:512], sig[:512], loop_cfg, range(1), device, tmp / "w1")
        _train(f, x[:512], y[:512], sig[:512], vec_cfg, range(sizes["mnist_vec"]), device, tmp / "w2")
    t_loop, m_loop, _, _ = _train(f, x, y, sig, loop_cfg, range(sizes["mnist_loop"]), device, tmp / "loop")
    t_vec, m_vec, meta, _ = _train(f, x, y, sig, vec_cfg, range(sizes["mnist_vec"]), device, tmp / "vec")
    rate_loop, rate_vec = sizes["mnist_loop"] / t_loop, sizes["mnist_vec"] / t_vec
    ratio = rate_vec / rate_loop
    fps, peak = _throughput(f, x, y, loop_cfg.batch_size, device)
    mfu = _mfu(fps, peak, {"one at a time": (sizes["mnist_loop"] * n, t_loop),
                           "vectorised": (sizes["mnist_vec"] * n, t_vec)})
    n1000 = 1000 * 20 * (12000 / n) / rate_vec  # member-epochs of 12,000 images at the measured rate
    ok = DRY_RUN or (ratio >= TARGETS["mnist_speedup"] and n1000 < TARGETS["mnist_n1000_s"])
    return ok, (f"{desc}; one at a time {rate_loop:.2f} members/s ({sizes['mnist_loop']} members), vectorised "
                f"{rate_vec:.2f} members/s (N={sizes['mnist_vec']}, group {meta['group_size']}, {meta['precision']}); "
                f"vectorised/one-at-a-time = {ratio:.1f}x (target >= {TARGETS['mnist_speedup']:.0f}x); projected "
                f"N=1000 x 20 epochs x 12,000 images: {_fmt_s(n1000)} (target < 15 min); peak memory "
                f"loop {m_loop / 2**30:.2f} GiB, vectorised {m_vec / 2**30:.2f} GiB{mfu}")


def check_cifar(device, sizes, tmp):
    from certssb.config import load_option
    from certssb.model import model_factory
    from certssb.tools.bench import load_data
    x, y, _, desc = load_data("cifar_resnet", sizes["cifar_images"], 0)
    n = len(x)
    sig = torch.full((n,), 0.25)
    f = model_factory(load_option("model", "preact_resnet32"), (3, 32, 32), 2)
    loop_cfg = _cfg(device, vectorise="false", batch_size=64)
    vec_cfg = _cfg(device, vectorise="true", batch_size=64)
    if not DRY_RUN:
        _train(f, x[:256], y[:256], sig[:256], loop_cfg, range(1), device, tmp / "w1")
        _train(f, x[:256], y[:256], sig[:256], vec_cfg, range(sizes["cifar_vec"]), device, tmp / "w2")
    t_loop, m_loop, meta_l, _ = _train(f, x, y, sig, loop_cfg, range(sizes["cifar_loop"]), device, tmp / "loop")
    t_vec, m_vec, meta, _ = _train(f, x, y, sig, vec_cfg, range(sizes["cifar_vec"]), device, tmp / "vec")
    scale = 10 * 10000 / n  # member-epochs of 10,000 images per member at 10 epochs
    per_hour_loop = 3600 * sizes["cifar_loop"] / t_loop / scale
    per_hour_vec = 3600 * sizes["cifar_vec"] / t_vec / scale
    best = max(per_hour_loop, per_hour_vec)
    fps, peak = _throughput(f, x, y, vec_cfg.batch_size, device)
    mfu = _mfu(
        fps, peak, {"one at a time": (sizes["cifar_loop"] * n, t_loop), "vectorised": (sizes["cifar_vec"] * n, t_vec)}
    )
    from certssb.ensemble.train import choose_vectorise
    auto = choose_vectorise(_cfg(device), f(), (3, 32, 32), device)
    ok = DRY_RUN or best >= TARGETS["cifar_members_per_hour"]
    return ok, (f"{desc}; members per hour at 10 epochs x 10,000 images: one at a time {per_hour_loop:.0f} "
                f"({meta_l['precision']}), vectorised {per_hour_vec:.0f} (group {meta['group_size']}, "
                f"{meta['precision']}); vectorised/one-at-a-time = {per_hour_vec / per_hour_loop:.2f}x; "
                f"vectorise=auto picks {'vmap' if auto else 'one at a time'}; N=1000 in "
                f"{_fmt_s(3600 * 1000 / best)} at the better rate (target < 1 h); peak memory loop "
                f"{m_loop / 2**30:.2f} GiB, vectorised {m_vec / 2**30:.2f} GiB{mfu}")


def check_precision(device, sizes, tmp):
    """Vectorised MNIST CNN in fp32 and in ``auto`` (bf16 on CUDA), and one at a time in both (the
    layout: channels-last on the one-at-a-time path only)."""
    from certssb.config import load_option
    from certssb.model import model_factory
    from certssb.tools.bench import load_data
    x, y, _, desc = load_data("mnist_cnn", sizes["mnist_images"], 0)
    sig = torch.full((len(x),), 0.25)
    f = model_factory(load_option("model", "mnist_cnn"), (1, 28, 28), 2)
    out, diff = [], {}
    for vec, members in (("true", sizes["prec_vec"]), ("false", sizes["mnist_loop"])):
        rates = {}
        for prec in ("fp32", "auto"):
            cfg = _cfg(device, vectorise=vec, precision=prec)
            wall, _, meta, store = _train(f, x, y, sig, cfg, range(members), device, tmp / f"{vec}-{prec}")
            rates[prec] = (members / wall, meta["precision"])
            diff[prec] = store.load(0)
        label = "vectorised" if vec == "true" else "one at a time"
        out.append(f"{label}: fp32 {rates['fp32'][0]:.2f} members/s, auto ({rates['auto'][1]}) "
                   f"{rates['auto'][0]:.2f} members/s = {rates['auto'][0] / rates['fp32'][0]:.2f}x")
    d = max(float((diff["fp32"][k].float() - diff["auto"][k].float()).abs().max()) for k in diff["fp32"])
    return True, f"{desc}; " + "; ".join(out) + f"; member 0 fp32 vs auto max |parameter difference| {d:.2e}"


def check_determinism(device, sizes, tmp):
    from certssb.config import load_option
    from certssb.model import model_factory
    from certssb.tools.bench import load_data
    x, y, _, desc = load_data("mnist_cnn", sizes["det_images"], 1)
    n, k, g = len(x), sizes["det_members"], sizes["det_group"]
    sig = torch.full((n,), 0.25)
    f = model_factory(load_option("model", "mnist_cnn"), (1, 28, 28), 2)
    epochs = 1 if DRY_RUN else 2
    det = _cfg(device, vectorise="true", group_size=g, n_members=k, deterministic=True, epochs=epochs)
    _, _, _, a = _train(f, x, y, sig, det, range(k), device, tmp / "a")
    _, _, _, b = _train(f, x, y, sig, det, range(k), device, tmp / "b")
    _train(f, x, y, sig, det, [k - 1, 1], device, tmp / "c")  # leftovers of an interrupted run
    _, _, _, c = _train(f, x, y, sig, det, range(k), device, tmp / "c")

    def equal(s1, s2):
        return all(all(torch.equal(s1.load(m)[p], s2.load(m)[p]) for p in s1.load(m)) for m in range(k))

    def maxdiff(s1, s2):
        return max(float((s1.load(m)[p].float() - s2.load(m)[p].float()).abs().max())
                   for m in range(k) for p in s1.load(m))

    rerun, resumed = equal(a, b), equal(a, c)
    free = _cfg(device, vectorise="true", group_size=g, n_members=k, epochs=epochs)
    _, _, meta, d = _train(f, x, y, sig, free, range(k), device, tmp / "d")
    _, _, _, e = _train(f, x, y, sig, dataclasses.replace(free, group_size=k), range(k), device, tmp / "e")
    return rerun and resumed, (f"{desc}; deterministic=true ({meta['precision']}, group {g}): rerun bit-identical "
                               f"{rerun}, resumed bit-identical {resumed}; default settings, group {g} vs {k}: max "
                               f"|parameter difference| {maxdiff(d, e):.2e} (float rounding, not checked)")


def _idx(array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_synthetic_fashion(directory: Path, n_train: int, n_test: int, seed: int = 0) -> None:
    """Fashion-MNIST-format idx files (gzipped) of SYNTHETIC images: class c is noise plus a bright
    band at rows 2c..2c+3 (learnable, so the certificates are not trivially empty)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 90, size=(n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 * c + 2: 2 * c + 6, 4:24] = 230
        (directory / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images), 1))
        (directory / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labels), 1))


def check_multirun(device, sizes, tmp):
    data = tmp / "synthetic-fashion"
    write_synthetic_fashion(data, sizes["sweep_train"] * 6, sizes["sweep_test"] * 6)
    sweep = tmp / "sweep"
    args = [
        "-m",
        "hydra/launcher=certssb_gpu",
        "hydra.launcher.jobs_per_gpu=2",
        "hydra.launcher.max_parallel=2",
        "hydra.launcher.poll_interval_s=0.2",
        f"hydra.sweep.dir={sweep}",
        "dataset=fashion_mnist",
        f"dataset.data_dir={data}",
        "dataset.classes=[0,1]",
        f"dataset.train_size={sizes['sweep_train']}",
        f"dataset.test_size={sizes['sweep_test']}",
        "attack=onepixel",
        "sigma_optimiser=fixed",
        "certifier=rab",
        f"ensemble.n_members={sizes['sweep_members']}",
        f"ensemble.epochs={sizes['sweep_epochs']}",
        f"undefended.epochs={sizes['sweep_epochs']}",
        f"ensemble.device={'cuda' if device.type == 'cuda' else 'cpu'}",
        "logger=none",
        "seed=0,1",
    ]
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": os.pathsep.join(
        [str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "certssb.run", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=400)
    wall = time.perf_counter() - t0
    summaries = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))]
    done = [s for s in summaries if s.get("status") == "complete"]
    if proc.returncode != 0 or len(done) != 2:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        return False, f"exit {proc.returncode}, {len(done)} of 2 jobs complete: {proc.stderr.strip()[-300:]}"
    devs = [f"{s['device']['name']} (CUDA_VISIBLE_DEVICES={s['device']['cuda_visible_devices']}, "
            f"{s['device']['precision']})" for s in done]
    on_device = all(s["device"]["type"] == device.type for s in done)
    acc = [round(s["metrics"]["clean_accuracy"], 3) for s in done]
    return on_device, (f"2 jobs complete in {wall:.0f} s on {'; '.join(devs)}; clean accuracy {acc} "
                       f"(SYNTHETIC Fashion-MNIST-format data, N={sizes['sweep_members']})")


_WORKLOADS: dict = {}


def workload(name: str, device, sizes):
    """The switch measurements' workload of ``name`` (``mnist_cnn`` | ``preact_resnet32``), built
    once per run: data on the device, the group size the trial step chooses (capped), FLOPs, peak."""
    if name in _WORKLOADS:
        return _WORKLOADS[name]
    from certssb.config import load_option
    from certssb.ensemble.precision import resolve_precision
    from certssb.ensemble.speed import FitSpec
    from certssb.ensemble.train import group_size
    from certssb.model import model_factory
    from certssb.tools.bench import load_data
    from certssb.tools.gpu_switches import Workload
    mnist = name == "mnist_cnn"
    batch, steps = sizes["sw_mnist_batch" if mnist else "sw_resnet_batch"], sizes["sw_steps"]
    x, y, _, desc = load_data("mnist_cnn" if mnist else "cifar_resnet", batch * steps, 0)
    small = {"blocks_per_stage": 1} if DRY_RUN and not mnist else {}  # the dry run: ResNet-8 (CPU minutes)
    f = model_factory(load_option("model", name, **small), tuple(x.shape[1:]), 2)
    x, y = x.to(device), y.to(device)
    sig = torch.full((len(x),), 0.25, device=device)
    precision = resolve_precision("auto", f(), device)
    cap = sizes["sw_mnist_group" if mnist else "sw_resnet_group"]
    g = cap if DRY_RUN else min(cap, group_size(_cfg(device, batch_size=batch), f, TrainingData(x, y, sig),
                                                FitSpec(1, batch, 1e-3, device, precision), cap))
    fps, peak = _throughput(f, x, y, batch, device)
    _WORKLOADS[name] = Workload(name, f, x, y, sig, batch, g, steps, 12000 if mnist else 10000, precision, fps, peak,
                                desc)
    return _WORKLOADS[name]


def check_switches(device, sizes, deadline: float):
    from certssb.tools.gpu_switches import engine_choice, measure_switches, shuffle_costs
    oks, out = [], []
    for name in ("mnist_cnn", "preact_resnet32"):
        w = workload(name, device, sizes)
        ok, summary = measure_switches(w, deadline, DRY_RUN)
        extra = [shuffle_costs(w, w.epoch_images), engine_choice(w)]
        print("    " + "; ".join(extra), flush=True)
        oks.append(ok)
        out.append(summary)
    return all(oks), "; ".join(out) + " (target for the defaults of a later change: >= 5x members/s)"


def check_profile(device, sizes):
    from certssb.tools.gpu_switches import profile_configs
    lines = []
    for name in ("mnist_cnn", "preact_resnet32"):
        lines += profile_configs(workload(name, device, sizes), steps=1 if DRY_RUN else 3, dry_run=DRY_RUN)
    for line in lines:
        print("  " + line, flush=True)
    done = sum(1 for line in lines if line.startswith("profile [") and ": wall " in line)
    skipped = sum(1 for line in lines if line.startswith("profile [") and ": skipped" in line)
    return done > 0, f"{done} step profiles printed above ({skipped} skipped)"


DRY_RUN = False


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m certssb.tools.gpu_check",
        description=("One short run that validates and measures the GPU paths: the CUDA tests, vectorised vs "
                     "one-at-a-time training (MNIST CNN, PreAct ResNet-32), fp32 vs bf16, determinism and a "
                     "two-job GPU sweep; one PASS/FAIL line per check, then 'gpu-check: K/M checks passed' (exit 0 "
                     "only when all pass). Example: python -m certssb.tools.gpu_check --dry-run --device cpu"))
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes (CPU dry run: < 1 minute); targets not checked")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --dry-run)")
    ap.add_argument("--only", default=None, help="comma-separated check names to run (default: all)")
    ap.add_argument("--budget-s", type=float, default=BUDGET_S,
                    help="seconds for the whole check; switch measurements past it are skipped (default %(default)s)")
    return ap


def main(argv=None) -> int:
    global DRY_RUN
    args = build_parser().parse_args(argv)
    start = time.monotonic()
    DRY_RUN = args.dry_run
    from certssb.ensemble import resolve_device
    from certssb.errors import CertSSBError
    try:
        device = resolve_device(args.device)
    except CertSSBError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sizes = DRY if args.dry_run else FULL
    print(f"gpu-check on {device} ({'DRY RUN, tiny sizes: figures are not meaningful' if args.dry_run else 'full'})",
          flush=True)
    checks = Checks()
    names = None if args.only is None else set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="certssb-gpu-check-") as tmp:
        tmp = Path(tmp)
        plan = [("environment", lambda: check_environment(device)),
                ("cuda-tests", lambda: check_cuda_tests(device)),
                ("mnist-vectorised", lambda: check_mnist(device, sizes, tmp / "mnist")),
                ("precision", lambda: check_precision(device, sizes, tmp / "precision")),
                ("cifar-resnet", lambda: check_cifar(device, sizes, tmp / "cifar")),
                ("determinism", lambda: check_determinism(device, sizes, tmp / "det")),
                ("multirun", lambda: check_multirun(device, sizes, tmp / "multirun")),
                ("switches", lambda: check_switches(device, sizes, start + args.budget_s - 20)),
                ("profile", lambda: check_profile(device, sizes))]
        for name, fn in plan:
            if names is None or name in names:
                checks.run(name, fn)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    passed = sum(ok for _, ok in checks.results)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"gpu-check: {passed}/{len(checks.results)} checks passed in {time.monotonic() - start:.0f} s on {card}",
          flush=True)
    return 0 if passed == len(checks.results) else 1


if __name__ == "__main__":
    sys.exit(main())
