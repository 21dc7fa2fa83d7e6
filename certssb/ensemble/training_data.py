"""The training inputs as the models see them: validated images, noisy batches of a group of
members (``x_i + sigma_i * member_noise(seed, k, i, "train")``) and small host-to-device copies."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from certssb.dataset.batched import BatchedImages, as_images
from certssb.ensemble.jobs import Job
from certssb.ensemble.noise import member_noise
from certssb.errors import ConfigError


@dataclass(frozen=True)
class TrainingData:
    """What models train on: images ``x`` (uint8 images or a float tensor ``[n, C, H, W]``),
    labels ``y`` [n], per-sample training sigmas [n] (0: no noise) and every model's training
    subset (int64 indices; None: every model sees every sample)."""

    x: object
    y: torch.Tensor
    sigmas: torch.Tensor
    subsets: list | None = None

    def head(self, b: int) -> "TrainingData":
        """The first ``b`` samples (no subsets)."""
        return TrainingData(self.x[:b], self.y[:b] if self.y is not None else None, self.sigmas[:b])


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
