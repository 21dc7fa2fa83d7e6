"""Training the ensemble: member k sees ``x_i + sigma_i * member_noise(seed, k, i, "train")`` for
the samples ``i`` of its training subset (every sample for the Gaussian family; its part or bag for
the count-certified family, whose sigmas are 0).

The noise of (member, sample) is fixed for the whole run (every epoch, batch and resume), the
init comes from ``derive_seed(seed, k, "init")`` and the epoch-e shuffle from
``make_generator(seed, k, "shuffle", e)``. Members trained together in a vectorised group have
training subsets of one size (``plan_groups`` groups them by size), so a group needs no padding.
Members are trained one at a time (the reference path) or in vmapped groups
(``vectorised.fit_group``); both give the same models up to float rounding. The speed switches of
``conf/ensemble/_training.yaml`` (the grouped engine, Adam's implementation, padded batches,
compile / CUDA graphs, the device shuffle; ``speed.py``) train through
``group_trainer.GroupTrainer``; at their defaults nothing changes. Every member is saved as soon
as its group finishes (a group's checkpoints by parallel writers, ``saving.py``), so an
interrupted run loses at most one group and a rerun trains only what the store lacks.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn
from certssb.progress import progress_bar

from certssb.ensemble.determinism import deterministic_kernels
from certssb.ensemble.device import resolve_device
from certssb.ensemble.group_size import (CudaMemoryProbe, cpu_group_size, jobs_per_gpu, plan_groups,
                                         size_from_trial)
from certssb.ensemble.jobs import Job, init_model, member_job
from certssb.ensemble.precision import FP32, Precision, resolve_precision
from certssb.ensemble.saving import save_group
from certssb.ensemble.settings import EnsembleSettings
from certssb.ensemble.speed import FitSpec, Speed
from certssb.ensemble.training_data import NoisySource, TrainingData, check_tensors
from certssb.ensemble.vectorised import batch_starts, fit_group, trial_step
from certssb.errors import ConfigError
from certssb.seeding import derive_seed

log = logging.getLogger("certssb")


def _fit_one(factory, job: Job, data: TrainingData, spec: FitSpec) -> nn.Module:
    """The reference path: one model on ``data`` as ``spec`` says, plain autograd and its own Adam.

    Only the forward pass runs under ``precision.autocast()``; the loss is computed from float32
    logits and parameters and Adam state stay float32. The inner loop makes no host copies.
    """
    x, y, sigmas = data.x, data.y, data.sigmas
    epochs, batch_size, lr, device = spec.epochs, spec.batch_size, spec.lr, spec.device
    precision = spec.precision or FP32
    model = precision.model(init_model(factory, job.init_seed, device))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    src = NoisySource(x, sigmas, [job], device)
    n = len(x)
    starts = batch_starts(job.size(n), batch_size, model)
    for epoch in range(epochs):
        perm = job.order(epoch, n, device)
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


def choose_engine(ens: EnsembleSettings, model: nn.Module, input_shape=None, device=None) -> str:
    """How the models train: ``loop`` (one at a time), ``vmap``, ``grouped`` or ``measure`` (time
    vmap and grouped on CUDA when the groups start, ``group_trainer.measure_engine``).

    ``true``/``vmap``, ``grouped`` and ``false`` as given; ``auto``: vmap, except on the CPU when the
    forward pass costs more than ``CPU_VMAP_MAX_FWD_FLOPS`` per sample (measured: the CPU loop is
    then compute-bound and vmap's grouped convolutions are slower: 0.55x for mnist_cnn on 12,000
    images and 0.70x for the PreAct ResNet, 2 cores). BatchNorm models vectorise too (per-member
    statistics, see ``vectorised``). ``measure``: as ``auto`` off CUDA and with
    ``ensemble.deterministic`` (a measured choice could differ between runs)."""
    mode = ens.vectorise_mode()
    if mode in ("true", "vmap", "grouped", "false"):
        return {"true": "vmap", "false": "loop"}.get(mode, mode)
    on_cpu = device is not None and torch.device(device).type == "cpu"
    if on_cpu and input_shape is not None and forward_flops(model, input_shape) > CPU_VMAP_MAX_FWD_FLOPS:
        return "loop"
    cuda = device is not None and torch.device(device).type == "cuda"
    return "measure" if mode == "measure" and cuda and not ens.deterministic else "vmap"


def choose_vectorise(ens: EnsembleSettings, model: nn.Module, input_shape=None, device=None) -> bool:
    """Whether the models run in vectorised groups (any engine of :func:`choose_engine`)."""
    return choose_engine(ens, model, input_shape, device) != "loop"


def group_size(ens: EnsembleSettings, factory, data: TrainingData, spec: FitSpec, n_todo: int,
               training: bool = True) -> int:
    """``ensemble.group_size`` if set; else CUDA: from a measured trial step (``group_size``) at
    ``spec``'s batch size, device and precision, CPU: from the model size. With
    ``ensemble.deterministic`` it depends on the ensemble's size (``n_members``), not on how many
    members are still to do."""
    if ens.group_size is not None:
        return int(ens.group_size)
    deterministic = bool(ens.deterministic)
    n = ens.n_members if deterministic else n_todo
    x, device = data.x, torch.device(spec.device)
    if device.type == "cuda":
        extra = x[0].numel() * 4 * x.shape[0] if training else 0  # the materialised noisy copy per member
        sizing = size_from_trial(lambda k: trial_step(factory, k, data, spec, training), CudaMemoryProbe(device), n,
                                 share=jobs_per_gpu(), extra_per_member=extra, deterministic=deterministic)
        torch.cuda.empty_cache()
        return sizing.group_size
    return cpu_group_size(factory(), tuple(x.shape[1:]), spec.batch_size, n, training=training)


def _prepare(data: TrainingData, device) -> TrainingData:
    """Validate and move the training data to the device, once per run (a one-off copy: pinning
    it first would only add a host copy). Images move as they are held (uint8 stays uint8) and
    are converted to float32 batch by batch."""
    x = check_tensors(data.x, data.y, data.sigmas)
    return TrainingData(x.to(device), data.y.to(device, torch.int64), data.sigmas.to(device, torch.float32),
                        data.subsets)


def train_members(factory, data: TrainingData, ens: EnsembleSettings, seed: int, members, store, device=None,
                  progress: bool = True) -> list[int]:
    """Train and save the members in ``members`` that ``store`` lacks; returns those trained now.

    ``data``: images, labels, training sigmas and (``data.subsets``, from ``ens.training_subsets``)
    every member's training-sample indices (None: each trains on every sample). Members are
    grouped by subset size, so a vectorised group is of one size."""
    device = resolve_device(device if device is not None else ens.device)
    members = [int(k) for k in members]
    if any(k < 0 for k in members):
        raise ConfigError("member indices must be non-negative")
    todo = store.missing(members)
    if not todo:
        return []
    data = _prepare(data, device)
    x, subsets = data.x, data.subsets
    index = (lambda k: None) if subsets is None else (lambda k: subsets[k].to(device))
    probe = factory()
    engine = choose_engine(ens, probe, tuple(x.shape[1:]), device)
    vectorise = engine != "loop"
    precision = resolve_precision(ens.precision, probe, device)
    del probe
    deterministic = bool(ens.deterministic)
    sizes = None if subsets is None else [int(s.numel()) for s in subsets]
    bar = progress_bar(total=len(todo), desc="train members", unit="member", enabled=progress)
    done: list[int] = []
    try:
        with deterministic_kernels(deterministic):
            spec = FitSpec(ens.epochs, ens.batch_size, ens.lr, device, precision)
            g = group_size(ens, factory, data, spec, len(todo)) if vectorise else 1
            speed = _resolve_speed(ens, engine, factory, data, spec, g)
            for group, keep in plan_groups(todo, g, deterministic, ens.n_members, sizes):
                jobs = [member_job(seed, k, index(k), str(ens.shuffle)) for k in group]
                t0 = time.perf_counter()
                states = _fit(factory, jobs, data, spec, speed)
                seconds = (time.perf_counter() - t0) / len(group)
                meta = {"epochs": ens.epochs, "seconds": seconds, "vectorised": bool(vectorise),
                        "group_size": len(group), "group_first": group[0],
                        "precision": _precision_name(precision, speed), "deterministic": deterministic}
                if speed is not None and not speed.reference:
                    meta["speed"] = speed.describe()
                if ens.shuffle != "host":
                    meta["shuffle"] = str(ens.shuffle)
                done += save_group(store, [(k, state, {"member": k, **meta})
                                           for k, state in zip(group, states) if k in keep])
                bar.update(len(keep))
    finally:
        bar.close()
    return done


def _resolve_speed(ens: EnsembleSettings, engine: str, factory, data: TrainingData, spec: FitSpec,
                   g: int) -> Speed | None:
    """The speed switches of the vectorised groups (None: one model at a time, where they do not
    apply: said once in the log when some are set); ``measure`` is decided here."""
    if engine == "loop":
        if Speed.of(ens, "vmap") != Speed():
            log.info("ensemble: models train one at a time here, so adam/pad_batches/compile are not used")
        return None
    if engine == "measure":
        from certssb.ensemble.group_trainer import measure_engine
        engine, _ = measure_engine(factory, data.x, data.y, data.sigmas, replace(spec, speed=Speed.of(ens, "vmap")), g)
    return Speed.of(ens, engine)


def _precision_name(precision: Precision, speed: Speed | None) -> str:
    """What the forward passes ran in (vmap runs in the default memory layout)."""
    if speed is None or speed.engine == "grouped":
        return precision.name
    return precision.for_vmap().name


def _fit(factory, jobs, data: TrainingData, spec: FitSpec, speed: Speed | None) -> list[dict]:
    """The state dicts of the models ``jobs`` trained on ``data``: one at a time (``speed`` None),
    through ``vectorised.fit_group`` (every switch at its default) or through
    ``group_trainer.GroupTrainer`` (the switches)."""
    if speed is None:
        return [_contiguous(_fit_one(factory, jobs[0], data, spec).state_dict())]
    if speed.reference and jobs[0].shuffle == "host":
        return fit_group(factory, jobs, data, spec)
    from certssb.ensemble.group_trainer import GroupTrainer
    return GroupTrainer(factory, jobs, data.x, data.y, data.sigmas, replace(spec, speed=speed)).run()


def train_single(factory, x, y, sigma: float, ens: EnsembleSettings, seed: int, key: str, device=None) -> nn.Module:
    """One model trained with fixed noise of level ``sigma`` (0: no noise), seeded by ``key``, with
    the ensemble's training settings (epochs, batch size, lr, precision, determinism).

    Used for the undefended reference (sigma 0) and the SGA surrogate. Returns the model in eval
    mode on ``device``.
    """
    device = resolve_device(device if device is not None else ens.device)
    precision = resolve_precision(ens.precision, factory(), device)
    sigma = float(sigma)
    if not 0 <= sigma < float("inf"):
        raise ConfigError(f"sigma must be finite and >= 0, got {sigma}")
    data = _prepare(TrainingData(x, y, torch.full((x.shape[0],), sigma, dtype=torch.float32)), device)
    job = Job(init_seed=derive_seed(seed, key, "init"), shuffle_seed=int(seed), shuffle_keys=(str(key),),
              noise_seed=derive_seed(seed, key), noise_member=0)
    with deterministic_kernels(bool(ens.deterministic)):
        model = _fit_one(factory, job, data, FitSpec(ens.epochs, ens.batch_size, ens.lr, device, precision))
    return model.to(memory_format=torch.contiguous_format).eval()
