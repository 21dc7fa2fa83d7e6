"""Training the ensemble: member k sees ``x_i + sigma_i * member_noise(seed, k, i, "train")``.

The noise of (member, sample) is fixed for the whole run (every epoch, batch and resume), the
init comes from ``derive_seed(seed, k, "init")`` and the epoch-e shuffle from
``make_generator(seed, k, "shuffle", e)``. Members are trained one at a time (the reference
path) or in vmapped groups (``vectorised.fit_group``); both give the same models up to float
rounding. Every member is saved as soon as its group finishes, so an interrupted run loses at most
one group and a rerun trains only what the store lacks.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn
from certssb.progress import progress_bar

from certssb.ensemble._source import (FP32, Job, NoisySource, Precision, cfg_get, cfg_int, check_tensors,
                                      host_to_device, init_model, precision_mode, resolve_precision,
                                      vectorise_mode)
from certssb.ensemble.determinism import deterministic_kernels, is_deterministic
from certssb.ensemble.device import resolve_device
from certssb.ensemble.group_size import (CudaMemoryProbe, cpu_group_size, jobs_per_gpu, plan_groups,
                                         size_from_trial)
from certssb.ensemble.vectorised import _batch_starts, fit_group, trial_step
from certssb.errors import ConfigError
from certssb.seeding import derive_seed


def member_job(seed: int, k: int) -> Job:
    return Job(init_seed=derive_seed(seed, k, "init"), shuffle_seed=int(seed), shuffle_keys=(int(k),),
               noise_seed=int(seed), noise_member=int(k))


def _lr(cfg) -> float:
    lr = cfg_get(cfg, "lr")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ConfigError(f"ensemble.lr must be a positive number, got {lr!r}")
    return float(lr)


def _fit_one(factory, job: Job, x, y, sigmas, epochs: int, batch_size: int, lr: float,
             device: torch.device, precision: Precision | None = None) -> nn.Module:
    """The reference path: one model, plain autograd and its own Adam.

    Only the forward pass runs under ``precision.autocast()``; the loss is computed from float32
    logits and parameters and Adam state stay float32. The inner loop makes no host copies.
    """
    precision = precision or FP32
    model = precision.model(init_model(factory, job.init_seed, device))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    src = NoisySource(x, sigmas, [job], device)
    n = len(x)
    starts = _batch_starts(n, batch_size, model)
    for epoch in range(epochs):
        perm = host_to_device(job.permutation(epoch, n), device)
        for start in starts:
            idx = perm[start:start + batch_size]
            xb = precision.batch(src.batch_one(0, idx))
            with precision.autocast():
                logits = model(xb)
            loss = F.cross_entropy(logits.float(), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model


def _contiguous(state: dict) -> dict:
    """A state dict in the default memory format (checkpoints do not depend on channels-last)."""
    return {k: v.contiguous() for k, v in state.items()}


CPU_VMAP_MAX_FWD_FLOPS = 1e6  # per sample; above this a CPU step is compute-bound and vmap cannot win


def forward_flops(model: nn.Module, input_shape, device=None) -> float:
    """FLOPs of one forward pass on one sample."""
    from torch.utils.flop_counter import FlopCounterMode
    p = next(model.parameters(), None)
    dev = p.device if p is not None else torch.device("cpu")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros((1,) + tuple(input_shape), device=dev))
    model.train()
    return float(counter.get_total_flops())


def choose_vectorise(cfg, model: nn.Module, input_shape=None, device=None) -> bool:
    """``true``/``false`` as given; ``auto``: vmap, except on the CPU when the forward pass costs
    more than ``CPU_VMAP_MAX_FWD_FLOPS`` per sample (measured: the CPU loop is then compute-bound
    and vmap's grouped convolutions are slower: 0.55x for mnist_cnn on 12,000 images and 0.70x
    for the PreAct ResNet, 2 cores). BatchNorm models vectorise too (per-member statistics, see
    ``vectorised``)."""
    mode = vectorise_mode(cfg)
    if mode == "auto":
        if device is not None and torch.device(device).type == "cpu" and input_shape is not None:
            return forward_flops(model, input_shape) <= CPU_VMAP_MAX_FWD_FLOPS
        return True
    return mode == "true"


def _group_size(cfg, factory, x, y, sigmas, batch_size, device, n_todo, precision, training=True) -> int:
    """``ensemble.group_size`` if set; else CUDA: from a measured trial step (``group_size``),
    CPU: from the model size. With ``ensemble.deterministic`` it depends on the ensemble's size
    (``n_members``), not on how many members are still to do."""
    g = cfg_get(cfg, "group_size", None)
    if g is not None:
        return cfg_int(cfg, "group_size")
    deterministic = is_deterministic(cfg)
    n = cfg_get(cfg, "n_members", n_todo) if deterministic else n_todo
    device = torch.device(device)
    if device.type == "cuda":
        extra = x[0].numel() * 4 * x.shape[0] if training else 0  # the materialised noisy copy per member
        sizing = size_from_trial(
            lambda k: trial_step(factory, k, x, y, sigmas, batch_size, device, precision, training),
            CudaMemoryProbe(device), n, share=jobs_per_gpu(), extra_per_member=extra, deterministic=deterministic)
        torch.cuda.empty_cache()
        return sizing.group_size
    return cpu_group_size(factory(), tuple(x.shape[1:]), batch_size, n, training=training)


def _prepare(x, y, sigmas, device):
    """Validate and move the training data to the device, once per run (a one-off copy: pinning
    it first would only add a host copy). Images move as they are held (uint8 stays uint8) and
    are converted to float32 batch by batch."""
    x = check_tensors(x, y, sigmas)
    return x.to(device), y.to(device, torch.int64), sigmas.to(device, torch.float32)


def train_members(factory, x, y, sigmas, cfg, seed: int, members, store, device=None,
                  progress: bool = True) -> list[int]:
    """Train and save the members in ``members`` that ``store`` lacks; returns those trained now."""
    device = resolve_device(device if device is not None else cfg_get(cfg, "device", "auto"))
    epochs, batch_size, lr = cfg_int(cfg, "epochs"), cfg_int(cfg, "batch_size"), _lr(cfg)
    precision_mode(cfg)  # validate before anything else
    members = [int(k) for k in members]
    if any(k < 0 for k in members):
        raise ConfigError("member indices must be non-negative")
    todo = store.missing(members)
    if not todo:
        return []
    x, y, sigmas = _prepare(x, y, sigmas, device)
    probe = factory()
    vectorise = choose_vectorise(cfg, probe, tuple(x.shape[1:]), device)
    precision = resolve_precision(cfg, probe, device)
    del probe
    deterministic = is_deterministic(cfg)
    bar = progress_bar(total=len(todo), desc="train members", unit="member", enabled=progress)
    done: list[int] = []
    try:
        with deterministic_kernels(deterministic):
            g = (_group_size(cfg, factory, x, y, sigmas, batch_size, device, len(todo), precision)
                 if vectorise else 1)
            for group, keep in plan_groups(todo, g, deterministic, cfg_get(cfg, "n_members", None)):
                jobs = [member_job(seed, k) for k in group]
                t0 = time.perf_counter()
                if vectorise:
                    states = fit_group(factory, jobs, x, y, sigmas, epochs, batch_size, lr, device, precision)
                else:
                    states = [_contiguous(_fit_one(factory, jobs[0], x, y, sigmas, epochs, batch_size, lr, device,
                                                   precision).state_dict())]
                seconds = (time.perf_counter() - t0) / len(group)
                name = precision.for_vmap().name if vectorise else precision.name
                for k, state in zip(group, states):
                    if k not in keep:
                        continue
                    store.save(k, state, meta={"member": k, "epochs": epochs, "seconds": seconds,
                                               "vectorised": bool(vectorise), "group_size": len(group),
                                               "group_first": group[0], "precision": name,
                                               "deterministic": deterministic})
                    done.append(k)
                bar.update(len(keep))
    finally:
        bar.close()
    return done


def train_single(factory, x, y, sigma: float, cfg, seed: int, key: str, device=None) -> nn.Module:
    """One model trained with fixed noise of level ``sigma`` (0: no noise), seeded by ``key``.

    Used for the undefended reference (sigma 0) and the SGA surrogate. Returns the model in eval
    mode on ``device``.
    """
    device = resolve_device(device if device is not None else cfg_get(cfg, "device", "auto"))
    epochs, batch_size, lr = cfg_int(cfg, "epochs"), cfg_int(cfg, "batch_size"), _lr(cfg)
    precision = resolve_precision(cfg, factory(), device)
    try:
        sigma = float(sigma)
    except (TypeError, ValueError):
        raise ConfigError(f"sigma must be a number, got {sigma!r}") from None
    if not sigma >= 0 or sigma == float("inf"):
        raise ConfigError(f"sigma must be finite and >= 0, got {sigma}")
    sigmas = torch.full((x.shape[0],), sigma, dtype=torch.float32)
    x, y, sigmas = _prepare(x, y, sigmas, device)
    job = Job(init_seed=derive_seed(seed, key, "init"), shuffle_seed=int(seed), shuffle_keys=(str(key),),
              noise_seed=derive_seed(seed, key), noise_member=0)
    with deterministic_kernels(is_deterministic(cfg)):
        model = _fit_one(factory, job, x, y, sigmas, epochs, batch_size, lr, device, precision)
    return model.to(memory_format=torch.contiguous_format).eval()
