"""The SGA loop of Cert-SSB step 1 (docs/METHOD.md section 3): per-sample noise levels sigma_x.

``sigma += step`` for ``iterations`` steps from ``sigma_0``, with fresh draws every step, kept inside
``[sigma_min, sigma_max]`` after every step. The step is the option's
(:meth:`certssb.sigma_optimiser.sga.SGASettings.step`): ``lr * dr/dsigma`` of the proxy radius
r(sigma) (see :mod:`.proxy`) through the frozen surrogate for ``sga``, the released code's
model-ignoring rule for ``released``. Being stochastic, SGA ascends E[r_m(sigma)], the expected
m-draw proxy; where f_A is near clip_high this differs somewhat from r computed with exact f
(tests/test_sigma_toy.py quantifies it).

Randomness: the draws of iteration ``t`` for sample ``i`` are the counter-based noise
``member_noise(seed, t, indices[i], (n_draws, *shape), "sga/<purpose>")`` (see
:mod:`certssb.ensemble.noise`): a pure function of (seed, purpose, sample index, iteration),
computed for a whole batch in one call (in chunks of at most ``DRAW_CHUNK_ELEMS`` elements, which
bounds the hash temporaries and does not change the values) instead of one generator and one
``randn`` per sample and iteration. A sample's draws (hence its sigma, up to floating-point
differences in the batched forward pass) therefore do not depend on ``batch_size``, on the batch
composition, on which other samples are optimised together, nor on the device (the noise is
computed in float64 and rounded, so CPU and CUDA give the same draws; the forward pass differs by
rounding, which is why the pipeline's sigma cache is keyed by the device type). ``indices``
defaults to ``0..n-1``; pass the samples' global indices when optimising a subset so that its
draws match those of the full run.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from certssb.dataset.batched import BatchedImages
from certssb.ensemble.noise import member_noise
from certssb.errors import ConfigError
from certssb.progress import progress_bar

from .base import SigmaOptimiserSettings as SGASettings  # an SGA option: one with ``step`` and SGA's knobs (sga.py)


def _resolve_device(device, cfg: SGASettings, model: nn.Module | None) -> torch.device:
    if device is None:
        device = cfg.device
    if device is None or str(device) == "auto":
        param = next(iter(model.parameters()), None) if model is not None else None
        if param is not None:
            return param.device
        if device is not None and torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"sigma_optimiser.device is not a valid torch device, got {device!r}") from None


def _check_inputs(x: Tensor, indices: Tensor | None) -> Tensor:
    if not (torch.is_tensor(x) or isinstance(x, BatchedImages)) or x.dim() < 2:
        raise ValueError(f"x must be images or a tensor [n, C, H, W], got {type(x).__name__}")
    n = x.shape[0]
    if indices is None:
        return torch.arange(n, dtype=torch.int64)
    indices = torch.as_tensor(indices, dtype=torch.int64).cpu()
    if indices.shape != (n,):
        raise ValueError(f"indices must have shape [{n}], got {tuple(indices.shape)}")
    return indices


DRAW_CHUNK_ELEMS = 1 << 22


def _draw(seed: int, purpose: str, idx: Tensor, t: int, m: int, shape: tuple[int, ...],
          chunk_elems: int = DRAW_CHUNK_ELEMS) -> Tensor:
    """[b, m, *shape] standard normals of iteration ``t``: row ``i`` keyed by ``idx[i]`` only
    (``idx`` on the optimisation device), generated in chunks of samples."""
    per = max(1, m * math.prod(shape))
    rows = max(1, chunk_elems // per)
    out = torch.empty((idx.shape[0], m) + shape, dtype=torch.float32, device=idx.device)
    for s in range(0, idx.shape[0], rows):
        out[s:s + rows] = member_noise(seed, t, idx[s:s + rows], (m,) + shape, f"sga/{purpose}")
    return out


def same_device(a: torch.device, b: torch.device) -> bool:
    """``a`` and ``b`` are the same device (``cuda`` means the current CUDA device)."""
    a, b = torch.device(a), torch.device(b)
    if a.type != b.type:
        return False
    if a.type != "cuda":
        return a.index == b.index or a.index is None or b.index is None

    def index(d):
        return d.index if d.index is not None else torch.cuda.current_device()
    return index(a) == index(b)


def _optimise_batch(cfg: SGASettings, model: nn.Module, xb: Tensor, idx: Tensor, seed: int, purpose: str,
                    device: torch.device, trajectory: list[Tensor] | None) -> Tensor:
    b, shape = xb.shape[0], tuple(xb.shape[1:])
    idx = idx.to(device)
    sigma = torch.full((b,), cfg.sigma_0, dtype=torch.float32, device=device)
    sigma = sigma.clamp(cfg.sigma_min, cfg.sigma_max)
    if trajectory is not None:
        trajectory.append(sigma.cpu())
    for t in range(cfg.iterations):
        eps = _draw(seed, purpose, idx, t, cfg.n_draws, shape)
        step = cfg.step(model, xb, sigma, eps)
        step = torch.where(torch.isfinite(step), step, torch.zeros_like(step))
        sigma = (sigma + step.detach()).clamp(cfg.sigma_min, cfg.sigma_max)
        if trajectory is not None:
            trajectory.append(sigma.cpu())
    return sigma.detach()


def optimise_sigmas(cfg: SGASettings, model: nn.Module | None, x: Tensor | BatchedImages, seed: int, purpose: str,
                    device=None, progress: bool = True, indices: Tensor | None = None) -> Tensor:
    """Per-sample noise levels sigma_x, float32 [n] on CPU, every value finite and > 0.

    cfg: the ``sga`` (or ``released``, ``sga_joint``) option's settings, parsed and checked
    (``load_option("sigma_optimiser", "sga", ...)`` in tools and tests).
    model: the surrogate returning logits. It is used frozen: put in eval mode with
    ``requires_grad`` off for the call, and both restored afterwards; its weights are never changed
    (if it lives on another device, a copy is moved).
    x: images (uint8 images, any ``BatchedImages``) or a float32 tensor [n, C, H, W], read one
    float32 batch at a time. seed, purpose: key the draws (see the module docstring).
    device: overrides ``cfg.device``; default: the model's device, else CPU.
    progress: a tqdm bar on a terminal, log lines elsewhere, over batches of ``cfg.batch_size``
    samples (each batch runs ``batch_size * n_draws`` forward passes per iteration).
    indices: int64 [n] sample ids that key the per-sample draws (default ``arange(n)``).
    """
    return _optimise(cfg, model, x, _Key(seed, purpose, indices), device, progress, trajectory=False)


def sigma_trajectory(cfg: SGASettings, model: nn.Module | None, x: Tensor | BatchedImages, seed: int, purpose: str,
                     device=None, indices: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """:func:`optimise_sigmas` and the sigmas after every step, float32 ``[iterations + 1, n]``
    (row 0 is the start): for tests and diagnostics."""
    return _optimise(cfg, model, x, _Key(seed, purpose, indices), device, False, trajectory=True)


@dataclass(frozen=True)
class _Key:
    """What keys the SGA draws of a set: the run seed, the set's purpose, the samples' ids."""

    seed: int
    purpose: str
    indices: Tensor | None


def _frozen(model: nn.Module, dev) -> tuple[nn.Module, list]:
    """The model on ``dev`` (a copy when it lives elsewhere), in eval mode with gradients off; the
    flags to restore."""
    net = model
    param = next(iter(model.parameters()), None)
    if param is not None and not same_device(param.device, dev):
        net = copy.deepcopy(model).to(dev)
    flags = [(net, net.training)] + [(p, p.requires_grad) for p in net.parameters()]
    net.eval()
    for p, _ in flags[1:]:
        p.requires_grad_(False)
    return net, flags


def _restore(flags: list) -> None:
    (net, training), params = flags[0], flags[1:]
    net.train(training)
    for p, flag in params:
        p.requires_grad_(flag)


def _optimise(cfg: SGASettings, model, x, key: _Key, device, progress: bool, trajectory: bool):
    if not callable(getattr(cfg, "step", None)):  # an SGA option (sga, sga_joint, released, a user's subclass)
        raise TypeError(f"optimise_sigmas runs SGA; got {type(cfg).__name__} (its sigmas come from its sigmas())")
    idx = _check_inputs(x, key.indices)
    n = x.shape[0]
    if n == 0:
        sigmas = torch.zeros(0, dtype=torch.float32)
        return (sigmas, sigmas.unsqueeze(0).clone()) if trajectory else sigmas
    if model is None:
        raise ConfigError(f"sigma_optimiser={cfg.name} needs a surrogate model")
    dev = _resolve_device(device, cfg, model)
    net, flags = _frozen(model, dev)
    chunks, trajs = [], []
    starts = range(0, n, cfg.batch_size)
    bar = progress_bar(starts, total=math.ceil(n / cfg.batch_size), desc=f"sigma[{cfg.name}] {key.purpose}",
                       unit="batch", enabled=progress, leave=False)
    try:
        for start in bar:
            stop = min(start + cfg.batch_size, n)
            xb = x[start:stop].to(device=dev, dtype=torch.float32)
            traj = [] if trajectory else None
            chunks.append(_optimise_batch(cfg, net, xb, idx[start:stop], key.seed, key.purpose, dev, traj).cpu())
            if trajectory:
                trajs.append(torch.stack(traj))
    finally:
        _restore(flags)
    sigmas = torch.cat(chunks).to(torch.float32)
    if not bool(torch.isfinite(sigmas).all()) or not bool((sigmas > 0).all()):
        raise RuntimeError("sigma optimisation produced a non-finite or non-positive sigma")
    return (sigmas, torch.cat(trajs, dim=1)) if trajectory else sigmas
