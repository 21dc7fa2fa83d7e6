"""What makes one trained model: its init seed, shuffle key, noise stream and training samples."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from certssb.seeding import derive_seed, make_generator


@dataclass(frozen=True)
class Job:
    """One model to train: ``init_seed`` (its initial weights), ``shuffle_seed``/``shuffle_keys``
    (its epoch shuffles), ``noise_seed``/``noise_member`` (its training noise) and ``index`` (the
    training samples it sees, int64; None: every sample); ``shuffle``: ``host`` (a seeded CPU
    randperm per epoch, the reference) or ``device`` (a hashed order made on the device,
    ``shuffle.py``)."""

    init_seed: int
    shuffle_seed: int
    shuffle_keys: tuple
    noise_seed: int
    noise_member: int
    index: torch.Tensor | None = None
    shuffle: str = "host"

    def size(self, n: int) -> int:
        """How many samples this model trains on out of ``n``."""
        return n if self.index is None else int(self.index.numel())

    def permutation(self, epoch: int, n: int) -> torch.Tensor:
        """The epoch's order of this model's training samples (indices into the ``n`` samples)."""
        gen = make_generator(self.shuffle_seed, *self.shuffle_keys, "shuffle", epoch)
        perm = torch.randperm(self.size(n), generator=gen)
        return perm if self.index is None else self.index[perm]

    def order(self, epoch: int, n: int, device) -> torch.Tensor:
        """The epoch's order on ``device``: the host permutation copied there, or the device shuffle."""
        if self.shuffle == "device":
            from certssb.ensemble.shuffle import DeviceShuffler
            return DeviceShuffler([self], n, device).orders(epoch)[0]
        from certssb.ensemble.device import host_to_device
        return host_to_device(self.permutation(epoch, n), device)


def member_job(seed: int, k: int, index: torch.Tensor | None = None, shuffle: str = "host") -> Job:
    """Model ``k`` of a run seeded ``seed`` (training on ``index``, or on every sample)."""
    return Job(init_seed=derive_seed(seed, k, "init"), shuffle_seed=int(seed), shuffle_keys=(int(k),),
               noise_seed=int(seed), noise_member=int(k), index=index, shuffle=shuffle)


def init_model(factory, init_seed: int, device) -> nn.Module:
    """Build a model with a deterministic init (CPU RNG forked and seeded), then move it."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(int(init_seed))
        model = factory()
    return model.to(device)
