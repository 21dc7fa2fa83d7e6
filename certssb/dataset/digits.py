"""scikit-learn's bundled 8x8 digits (1,797 images, values 0..16): needs no file and no network.

The train/test split is FIXED (a permutation from seed 0, independent of the run seed) so every
run evaluates on the same test images; ``dataset.test_fraction`` sets its size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from omegaconf import MISSING

from certssb.seeding import make_generator

from .settings import DatasetSettings
from .splits import RawSplits

SPLIT_SEED = 0


def load_digits_raw(fraction: float) -> RawSplits:
    """The digits with ``fraction`` of them (rounded) in the fixed test split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype("uint8")).unsqueeze(1)  # [n, 1, 8, 8], 0..16
    y = torch.from_numpy(bunch.target.astype("int64"))
    n = int(y.shape[0])
    n_test = max(1, min(n - 1, int(math.floor(float(fraction) * n + 0.5))))
    perm = torch.randperm(n, generator=make_generator(SPLIT_SEED, "split", "digits"))
    test_idx = perm[:n_test].sort().values
    train_idx = perm[n_test:].sort().values
    return RawSplits(x[train_idx], y[train_idx], x[test_idx], y[test_idx], scale=16.0)


@dataclass
class DigitsSettings(DatasetSettings):
    input_shape: ClassVar[tuple[int, int, int]] = (1, 8, 8)
    class_names: ClassVar[tuple[str, ...]] = tuple(str(i) for i in range(10))
    test_fraction: float = MISSING

    def check(self, run) -> None:
        self.require_range("test_fraction", 0.0, 1.0, low_open=True, high_open=True)
        super().check(run)

    def load_raw(self) -> RawSplits:
        return load_digits_raw(self.test_fraction)
