"""The vectorised training loop with the speed switches (``speed.Speed``).

:class:`GroupTrainer` trains a group of models as ``vectorised.fit_group`` does (same models,
noise, shuffles and loss: the sum over models of each model's mean loss, one Adam over the
stacked parameters) and adds the switches: the ``grouped`` engine, Adam's implementation, padded
batches, ``torch.compile`` and whole-step CUDA graphs, and the device shuffle of the jobs. With
every switch at its default it performs the same operations in the same order as ``fit_group``
(``tests/test_ensemble_speed.py`` checks them bit for bit), so it is also what the GPU check
profiles. Its parts (setup, one epoch's batches, one step) are separate so that a profiler or a
timer can wrap single steps.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from certssb.ensemble.grouped import group_models, verify_grouped
from certssb.ensemble.device import host_to_device
from certssb.ensemble.jobs import Job, init_model
from certssb.ensemble.masking import BatchMask, StackableBatchNorm, padded_order, swap_batchnorms
from certssb.ensemble.precision import FP32, Precision
from certssb.ensemble.shuffle import DeviceShuffler
from certssb.ensemble.speed import FitSpec, Speed, make_adam  # noqa: F401  (FitSpec: part of this API)
from certssb.ensemble.training_data import NoisySource
from certssb.ensemble.vectorised import batch_starts, stack_models, unstack_state
from certssb.errors import ConfigError

log = logging.getLogger("certssb")


def vmap_models(models, precision: Precision, holder: BatchMask | None):
    """``stack_models`` (the vmapped call), with masked BatchNorm layers when ``holder`` is given
    (padded batches); ``call(params, buffers, x, mask=None)``."""
    params, buffers, base, vcall = stack_models(models, precision)
    if holder is None:
        return params, buffers, base, lambda p, b, x, mask=None: vcall(p, b, x)
    to_float = precision.autocast_dtype is not None
    swap_batchnorms(base, lambda bn: StackableBatchNorm(bn, None, holder, to_float))
    return params, buffers, base, _with_mask(vcall, holder)


def _with_mask(fn, holder: BatchMask):
    def call(p, b, x, mask=None):
        holder.mask = mask
        try:
            return fn(p, b, x)
        finally:
            holder.mask = None
    return call


def _grouped(models, precision: Precision, holder: BatchMask | None):
    params, buffers, base, gcall = group_models(models, precision, holder)
    if holder is None:
        return params, buffers, base, lambda p, b, x, mask=None: gcall(p, b, x)
    return params, buffers, base, _with_mask(gcall, holder)


class GroupTrainer:
    """Train the models ``jobs`` together (see the module docstring); ``run()`` returns their
    state dicts (on the device)."""

    def __init__(self, factory, jobs: list[Job], x, y, sigmas, spec: FitSpec):
        speed, device = spec.speed, torch.device(spec.device)
        self.spec, self.jobs, self.y, self.device = spec, jobs, y, device
        self.precision = spec.precision.for_vmap() if speed.engine == "vmap" else spec.precision
        if speed.engine == "grouped":
            verify_grouped(factory, tuple(x.shape[1:]))
        models = [init_model(factory, job.init_seed, device) for job in jobs]
        for m in models:
            m.train()
        self.holder = BatchMask() if speed.pad else None
        build = vmap_models if speed.engine == "vmap" else _grouped
        self.params, self.buffers, _base, self.call = build(models, self.precision, self.holder)
        self.template = models[0]
        del models
        self.opt = make_adam(list(self.params.values()), spec.lr, speed.adam, capturable=speed.compile == "cudagraphs")
        self.src = NoisySource(x, sigmas, jobs, device)
        self.n, self.g = len(x), len(jobs)
        self.size = jobs[0].size(self.n)
        if any(job.size(self.n) != self.size for job in jobs):
            raise ValueError("the members of a vectorised group must train on subsets of one size")
        self.starts = batch_starts(self.size, spec.batch_size, self.template)
        self.step_batch = min(spec.batch_size, self.size)
        self.shuffler = DeviceShuffler(jobs, self.n, device) if jobs[0].shuffle == "device" else None
        self.autocast = self.precision.autocast
        if speed.compile == "cudagraphs" and self.precision.autocast_dtype is not None:
            # autocast's cast cache must be off inside a captured region (torch.cuda.graph's notes)
            dtype, kind = self.precision.autocast_dtype, self.precision.device_type
            self.autocast = lambda: torch.autocast(kind, dtype=dtype, cache_enabled=False)
        self.loss = self._loss
        if speed.compile == "inductor":
            self.loss = torch.compile(self._loss, dynamic=False)
        self.graphed = GraphedStep(self) if speed.compile == "cudagraphs" else None

    def orders(self, epoch: int) -> torch.Tensor:
        """int64 ``[G, size]`` on the device: every model's sample order in ``epoch``."""
        if self.shuffler is not None:
            return self.shuffler.orders(epoch)
        return host_to_device(torch.stack([job.permutation(epoch, self.n) for job in self.jobs]), self.device)

    def batches(self, epoch: int):
        """``(idx [G, b], mask [b] | None)`` per step of ``epoch`` (padded with ``speed.pad``)."""
        order = self.orders(epoch)
        if self.spec.speed.pad:
            yield from padded_order(order, self.starts, self.step_batch)
            return
        for start in self.starts:
            yield order[:, start:start + self.spec.batch_size], None

    def _loss(self, params, buffers, idx, mask):
        xb = self.precision.batch(self.src.batch(idx))
        with self.autocast():
            logits = self.call(params, buffers, xb, mask)
        g, b = idx.shape
        if mask is None:
            return F.cross_entropy(logits.float().reshape(g * b, -1), self.y[idx].reshape(-1), reduction="sum") / b
        ce = F.cross_entropy(logits.float().reshape(g * b, -1), self.y[idx].reshape(-1), reduction="none")
        return (ce.view(g, b) * mask).sum() / mask.sum()

    def eager_step(self, idx, mask, set_to_none: bool = True) -> None:
        loss = self.loss(self.params, self.buffers, idx, mask)
        self.opt.zero_grad(set_to_none=set_to_none)
        loss.backward()
        self.opt.step()

    def step(self, idx, mask) -> None:
        if self.graphed is not None:
            self.graphed(idx, mask)
        else:
            self.eager_step(idx, mask)

    def epoch(self, epoch: int) -> None:
        for idx, mask in self.batches(epoch):
            self.step(idx, mask)

    def states(self) -> list[dict]:
        return [unstack_state(self.template, self.params, self.buffers, i) for i in range(self.g)]

    def run(self) -> list[dict]:
        if self.spec.speed.compile != "inductor":
            for e in range(self.spec.epochs):
                self.epoch(e)
            return self.states()
        from torch._dynamo.exc import TorchDynamoException
        try:
            for e in range(self.spec.epochs):
                self.epoch(e)
        except TorchDynamoException as exc:  # compile refused here (no C++ compiler, an unsupported op, ...)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"ensemble.compile=inductor failed on {self.device.type}: {first[:200]}; "
                              "use ensemble.compile=eager") from None
        return self.states()


class GraphedStep:
    """The whole training step (gather of the noisy batch, forward, backward, Adam) captured as
    one CUDA graph for the full batch shape and replayed (``ensemble.compile: cudagraphs``).

    The first ``WARMUP`` full steps run eagerly on a side stream (they are real steps: cuBLAS and
    cuDNN set up their workspaces there); then the step is captured (capture runs nothing) and
    replayed from then on, with the step's indices and mask copied into the graph's static
    inputs. Adam is ``capturable`` (its step counters live on the device). The gradients are the
    graph's own tensors: eager steps (other shapes: an unpadded last batch) zero them in place
    instead of dropping them."""

    WARMUP = 3

    def __init__(self, trainer: GroupTrainer):
        if trainer.device.type != "cuda":
            raise ConfigError("ensemble.compile=cudagraphs needs a CUDA device; use compile=eager or inductor")
        self.t, self.graph, self.static, self.warm = trainer, None, None, 0
        self.shape = (trainer.g, trainer.step_batch)

    def __call__(self, idx, mask) -> None:
        t = self.t
        if tuple(idx.shape) != self.shape:
            t.eager_step(idx, mask, set_to_none=self.graph is None)
            return
        if self.graph is None and self.warm < self.WARMUP:
            side = torch.cuda.Stream(t.device)
            side.wait_stream(torch.cuda.current_stream(t.device))
            with torch.cuda.stream(side):
                t.eager_step(idx, mask)
            torch.cuda.current_stream(t.device).wait_stream(side)
            self.warm += 1
            return
        if self.graph is None:
            self._capture(idx, mask)
        s_idx, s_mask = self.static
        s_idx.copy_(idx)
        if s_mask is not None:
            s_mask.copy_(mask)
        self.graph.replay()

    def _capture(self, idx, mask) -> None:
        t = self.t
        self.static = (idx.clone(), None if mask is None else mask.clone())
        t.opt.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            loss = t.loss(t.params, t.buffers, *self.static)
            loss.backward()
            t.opt.step()
        self.graph = graph


def measure_engine(factory, x, y, sigmas, spec: FitSpec, g: int, steps: int = 5) -> tuple[str, dict]:
    """``ensemble.vectorise: measure`` on CUDA: the faster engine (vmap or grouped) for ``g`` models
    on this data, from the wall time of ``steps`` training steps after one warm-up epoch on a
    slice of ``steps`` batches; returns ``(engine, {engine: seconds per step})``. A model the
    grouped engine cannot hold stays on vmap."""
    n = min(len(x), steps * spec.batch_size)
    jobs = [Job(init_seed=k, shuffle_seed=0, shuffle_keys=(k,), noise_seed=0, noise_member=k) for k in range(g)]
    timings = {}
    for engine in ("vmap", "grouped"):
        try:
            trainer = GroupTrainer(factory, jobs, x[:n], y[:n], sigmas[:n],
                                   FitSpec(2, spec.batch_size, spec.lr, spec.device, spec.precision,
                                           Speed(engine, spec.speed.adam, spec.speed.pad, spec.speed.compile)))
        except ConfigError as exc:
            log.info("vectorise=measure: %s", exc)
            continue
        trainer.epoch(0)
        torch.cuda.synchronize(spec.device)
        t0 = time.perf_counter()
        trainer.epoch(1)
        torch.cuda.synchronize(spec.device)
        timings[engine] = (time.perf_counter() - t0) / max(1, len(trainer.starts))
        del trainer
    best = min(timings, key=timings.get) if timings else "vmap"
    log.info("vectorise=measure: %s per step at %d models: %s", best, g,
             ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in timings.items()))
    return best, timings
