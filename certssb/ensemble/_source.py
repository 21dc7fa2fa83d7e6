"""Shared training plumbing: config parsing, deterministic init/shuffles and noisy batches."""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass

import torch
from torch import nn

from certssb.dataset.batched import BatchedImages, as_images
from certssb.ensemble.noise import member_noise
from certssb.errors import ConfigError
from certssb.seeding import make_generator


def cfg_get(cfg, key: str, default=None):
    """``cfg.key`` (settings, DictConfig or namespace), ``default`` when absent or null."""
    value = cfg.get(key, default) if isinstance(cfg, dict) else getattr(cfg, key, default)
    return default if value is None else value


def cfg_int(cfg, key, default=None, minimum=1) -> int:
    value = cfg_get(cfg, key, default)
    if value is None:
        raise ConfigError(f"ensemble config needs `{key}` (an integer >= {minimum})")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < minimum:
        raise ConfigError(f"ensemble.{key} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def vectorise_mode(cfg) -> str:
    """``auto`` | ``true`` | ``false`` from ``cfg.vectorise`` (bools and strings accepted)."""
    value = cfg_get(cfg, "vectorise", "auto")
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip().lower()
    if text not in ("auto", "true", "false"):
        raise ConfigError(f"ensemble.vectorise must be auto, true or false, got {value!r}")
    return text


PRECISIONS = ("auto", "fp32", "bf16")


def precision_mode(cfg) -> str:
    """``auto`` | ``fp32`` | ``bf16`` from ``cfg.precision`` (default ``auto``)."""
    value = cfg_get(cfg, "precision", "auto")
    text = str(value).strip().lower()
    if text not in PRECISIONS:
        raise ConfigError(f"ensemble.precision must be one of {', '.join(PRECISIONS)}; got {value!r}")
    return text


def is_convolutional(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())


@dataclass(frozen=True)
class Precision:
    """How forward passes run: ``autocast_dtype`` (None: plain float32) and the memory format.

    Parameters, gradients and optimiser state always stay float32; only the forward pass is
    autocast (losses and softmaxes are computed from float32/float64 logits).
    """

    device_type: str = "cpu"
    autocast_dtype: torch.dtype | None = None
    channels_last: bool = False

    @property
    def name(self) -> str:
        """``fp32`` | ``bf16``, with ``+channels_last`` when used (the resolved mode, for logs,
        checkpoint metadata and the member fingerprint)."""
        base = "fp32" if self.autocast_dtype is None else str(self.autocast_dtype).replace("torch.", "").replace(
            "bfloat16", "bf16")
        return base + ("+channels_last" if self.channels_last else "")

    def for_vmap(self) -> "Precision":
        """This precision in the default memory format (what the vmapped path runs; see
        ``vectorised``)."""
        return Precision(self.device_type, self.autocast_dtype, False)

    def autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.autocast_dtype)

    def model(self, model: nn.Module) -> nn.Module:
        """The model in this precision's memory format (in place)."""
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def batch(self, xb: torch.Tensor) -> torch.Tensor:
        """An input batch ``[b, C, H, W]`` in this memory format (vmapped groups ``[G, b, ...]``
        run in the default layout, see ``for_vmap``)."""
        if not self.channels_last or xb.dim() != 4:
            return xb
        return xb.contiguous(memory_format=torch.channels_last)


FP32 = Precision()


def resolve_precision(cfg, model: nn.Module, device) -> Precision:
    """``auto``: bf16 autocast and channels-last on CUDA for convolutional models (bf16 only where
    the GPU supports it), float32 otherwise (always on CPU); ``fp32``: float32; ``bf16``: bf16
    autocast on any device (CPU included), default memory format."""
    mode = precision_mode(cfg)
    device = torch.device(device)
    if mode == "fp32":
        return Precision(device.type)
    if mode == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError(f"ensemble.precision=bf16 but {torch.cuda.get_device_name(device)} lacks bfloat16; "
                              f"use ensemble.precision=auto or fp32")
        return Precision(device.type, torch.bfloat16)
    if device.type == "cuda" and is_convolutional(model):
        return Precision(device.type, torch.bfloat16 if torch.cuda.is_bf16_supported() else None, True)
    return Precision(device.type)


def host_to_device(t: torch.Tensor, device) -> torch.Tensor:
    """Copy a small host tensor that is made anew on the host each epoch (the shuffles) to
    ``device``; to CUDA through pinned memory and without blocking the host (the caching host
    allocator reuses the pinned buffers and keeps each alive until its copy has run)."""
    device = torch.device(device)
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


@dataclass(frozen=True)
class Job:
    """What makes one trained model: its init seed, shuffle key and noise stream."""

    init_seed: int
    shuffle_seed: int
    shuffle_keys: tuple
    noise_seed: int
    noise_member: int

    def permutation(self, epoch: int, n: int) -> torch.Tensor:
        gen = make_generator(self.shuffle_seed, *self.shuffle_keys, "shuffle", epoch)
        return torch.randperm(n, generator=gen)


def init_model(factory, init_seed: int, device) -> nn.Module:
    """Build a model with a deterministic init (CPU RNG forked and seeded), then move it."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(int(init_seed))
        model = factory()
    return model.to(device)


def check_tensors(x, y, sigmas=None) -> BatchedImages:
    """Validate images ``x`` (uint8 images or a float tensor ``[n, C, H, W]``), labels ``y`` [n]
    (None: not checked) and ``sigmas`` [n]; returns ``x`` as :class:`BatchedImages`."""
    x = as_images(x)
    n = len(x)
    if y is not None and (not isinstance(y, torch.Tensor) or tuple(y.shape) != (n,)):
        raise ConfigError(f"y must be a tensor [n] matching x, got {getattr(y, 'shape', type(y))}")
    if sigmas is not None:
        if not isinstance(sigmas, torch.Tensor) or tuple(sigmas.shape) != (n,):
            raise ConfigError(f"sigmas must be a tensor [n] matching x, got {getattr(sigmas, 'shape', type(sigmas))}")
        if not bool(torch.isfinite(sigmas).all()) or bool((sigmas < 0).any()):
            raise ConfigError("sigmas must be finite and non-negative")
    return x


def cache_budget_bytes(device: torch.device) -> int:
    """Memory we allow for the materialised noisy training copies of one group."""
    if device.type == "cuda":
        from certssb.ensemble.group_size import jobs_per_gpu
        free, total = torch.cuda.mem_get_info(device)
        return int(0.3 * min(free, total / jobs_per_gpu()))
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return int(min(0.15 * total, 4 << 30))


class NoisySource:
    """Noisy training inputs ``x_i + sigma_i * member_noise(seed, k, i, "train")`` for a group.

    ``x`` (images, see :class:`BatchedImages`) is read as float32 batches; the noise is added
    after the conversion. The values are a pure function of (member, index), so they are either
    materialised once per group (when they fit ``cache_budget_bytes``; the same numbers every
    epoch, computed once) or generated per batch. Both give bit-identical batches.
    """

    def __init__(self, x, sigmas, jobs: list[Job], device, chunk_elems: int = 1 << 21):
        x = as_images(x)
        self.x, self.sigmas, self.jobs = x, sigmas, jobs
        self.shape = tuple(x.shape[1:])
        self.device = device
        self.zero = bool((sigmas == 0).all())
        n = len(x)
        self.members = torch.tensor([j.noise_member for j in jobs], dtype=torch.int64, device=device)
        self.seeds = {j.noise_seed for j in jobs}
        if len(self.seeds) != 1:
            raise ValueError("a group must share one noise seed")
        self.seed = next(iter(self.seeds))
        self.cache = None
        self.dtype = x.float_dtype  # float32 (a float64 tensor stays float64)
        need = len(jobs) * n * math.prod(self.shape) * self.dtype.itemsize
        if not self.zero and need <= cache_budget_bytes(device):
            self.cache = torch.empty((len(jobs), n) + self.shape, dtype=self.dtype, device=device)
            per = max(1, chunk_elems // max(1, math.prod(self.shape)))
            for g, job in enumerate(jobs):
                for s in range(0, n, per):
                    idx = torch.arange(s, min(n, s + per), device=device)
                    self.cache[g, s:s + per] = self._compute(job.noise_member, idx)

    def _compute(self, members, idx: torch.Tensor) -> torch.Tensor:
        noise = member_noise(self.seed, members, idx, self.shape, "train", device=self.device, dtype=self.dtype)
        return self.x.batch(idx, dtype=self.dtype) + self.sigmas[idx].view(idx.shape + (1,) * len(self.shape)) * noise

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        """``idx`` [G, b] (row g = member g's sample indices) -> noisy inputs [G, b, *shape]."""
        if self.zero:
            return self.x.batch(idx, dtype=self.dtype)
        if self.cache is not None:
            rows = torch.arange(len(self.jobs), device=idx.device).view(-1, 1)
            return self.cache[rows, idx]
        return self._compute(self.members.view(-1, 1), idx)

    def batch_one(self, g: int, idx: torch.Tensor) -> torch.Tensor:
        """Member ``g`` of the group: ``idx`` [b] -> [b, *shape]."""
        if self.zero:
            return self.x.batch(idx, dtype=self.dtype)
        if self.cache is not None:
            return self.cache[g, idx]
        return self._compute(self.jobs[g].noise_member, idx)
