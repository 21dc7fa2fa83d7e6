"""The triggered test set, triggered one batch at a time.

Every trigger's ``apply`` is a deterministic function of each image alone (the same values
whichever batch an image is in), so the triggered test set need not be held as float:
:class:`TriggeredImages` converts a batch of the clean (uint8) test set and applies the trigger.
The trigger always runs on the CPU, where ``poison`` measured the realised sizes, and the
triggered batch then moves to the requested device: a GPU never rounds the trigger differently.

Prediction reads every batch once per member (group), so a set whose float32 copy fits
``MATERIALISE_BYTES`` is triggered once when it is moved for use (``to``) and read from that copy
(the same values); a larger set (224-px images) is triggered per batch.
"""

from __future__ import annotations

import math

import torch

from certssb.dataset.batched import BatchedImages, FloatImages

from .base import Trigger

MATERIALISE_BYTES = 1 << 30  # a triggered set up to 1 GiB as float32 is triggered once per move


class TriggeredImages(BatchedImages):
    """``trigger.apply(clean[idx])`` for every batch ``idx`` of the clean images ``clean``."""

    def __init__(self, clean: BatchedImages, trigger: Trigger, device=None) -> None:
        self.clean = clean
        self.trigger = trigger
        self.device = torch.device(device) if device is not None else None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.clean.shape)

    @property
    def nbytes(self) -> int:
        return self.clean.nbytes

    def batch(self, index, device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        x = self.clean.batch(index.cpu() if isinstance(index, torch.Tensor) else index)
        lead = tuple(x.shape[:-3])
        out = self.trigger.apply(x.reshape((-1,) + tuple(x.shape[-3:]))).reshape(lead + tuple(x.shape[-3:]))
        target = device if device is not None else self.device
        if target is not None:
            out = out.to(target, non_blocking=True)
        return out if dtype == torch.float32 else out.to(dtype)

    def subset(self, index) -> "TriggeredImages":
        return TriggeredImages(self.clean.subset(index.cpu() if isinstance(index, torch.Tensor) else index),
                               self.trigger, self.device)

    def to(self, device) -> BatchedImages:
        """The same set on ``device``: triggered once into a float32 copy there when that copy fits
        ``MATERIALISE_BYTES``, else batches triggered on the CPU when read and delivered there."""
        if len(self) * 4 * math.prod(self.input_shape) <= MATERIALISE_BYTES:
            return FloatImages(self.to_float()).to(device)
        return TriggeredImages(self.clean, self.trigger, device)
