"""Epoch shuffles made on the device (``ensemble.shuffle: device``).

The reference shuffle (``host``) is a ``torch.randperm`` of a seeded CPU generator per model and
epoch (``Job.permutation``), copied to the device every epoch. ``device`` instead sorts a
counter-based hash: model ``k``'s order in epoch ``e`` is ``argsort(h(key_k, e, position))`` with
``h`` the splitmix64 finaliser of ``noise.py`` and ``key_k`` derived from the model's shuffle seed
and keys. The hash of one (key, epoch) is a bijection of the position, so the sort keys are
distinct (no ties) and i.i.d.-looking: the order is a uniformly drawn permutation. Integer
arithmetic (int64 multiplications and additions wrap modulo 2**64 on every device; shifts are
masked) and a sort of distinct keys are exact, so the order is the same on any device, bit for bit.

It is another order than ``host``'s, so it trains other models: it is off by default and is part of
the members' checkpoint fingerprint when on.
"""

from __future__ import annotations

import torch

from certssb.ensemble.noise import _GOLDEN, _mix, _signed
from certssb.seeding import derive_seed


def shuffle_key(shuffle_seed: int, shuffle_keys: tuple) -> int:
    """A model's 63-bit shuffle key (from the same seed and keys as its host shuffle)."""
    return derive_seed(shuffle_seed, *shuffle_keys, "device_shuffle")


def _epoch_term(epoch: int) -> int:
    return _signed(((int(epoch) + 1) * (_GOLDEN % (1 << 64))) % (1 << 64))


def hashed_orders(keys: torch.Tensor, epoch: int, size: int) -> torch.Tensor:
    """int64 ``[G, size]``: each row a permutation of ``0..size-1``, from the keys ``[G]`` (int64,
    on the device that computes) and the epoch."""
    pos = torch.arange(1, size + 1, dtype=torch.int64, device=keys.device).mul_(_GOLDEN)
    stream = _mix(keys.view(-1, 1) + _epoch_term(epoch))
    h = _mix(stream + pos.view(1, -1))
    return torch.argsort(h, dim=1, stable=True)


class DeviceShuffler:
    """The epoch orders of a group's models on ``device`` (keys and subsets moved once)."""

    def __init__(self, jobs, n: int, device):
        self.keys = torch.tensor([shuffle_key(j.shuffle_seed, j.shuffle_keys) for j in jobs], dtype=torch.int64,
                                 device=device)
        self.size = jobs[0].size(n)
        self.index = None
        if jobs[0].index is not None:
            self.index = torch.stack([j.index.to(device, torch.int64) for j in jobs])

    def orders(self, epoch: int) -> torch.Tensor:
        """int64 ``[G, size]``: row g = model g's sample indices in epoch ``epoch``'s order."""
        order = hashed_orders(self.keys, epoch, self.size)
        return order if self.index is None else torch.gather(self.index, 1, order)
