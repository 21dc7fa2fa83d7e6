"""scikit-learn's bundled 8x8 digits (1,797 images, values 0..16): needs no file and no network.

The train/test split is FIXED (a permutation from seed 0, independent of the run seed) so every
run evaluates on the same test images; ``dataset.test_fraction`` (default 0.2) sets its size.
"""

from __future__ import annotations

import math
import numbers

import torch

from certssb.errors import ConfigError
from certssb.seeding import make_generator

from ._config import cfg_get
from .splits import RawSplits

DEFAULT_TEST_FRACTION = 0.2
SPLIT_SEED = 0


def load_digits_raw(cfg) -> RawSplits:
    from sklearn.datasets import load_digits

    fraction = cfg_get(cfg, "test_fraction", DEFAULT_TEST_FRACTION)
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0.0 < float(fraction) < 1.0:
        raise ConfigError(f"dataset.test_fraction={fraction!r} is invalid: use a number strictly between 0 and 1")
    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype("uint8")).unsqueeze(1)  # [n, 1, 8, 8], 0..16
    y = torch.from_numpy(bunch.target.astype("int64"))
    n = int(y.shape[0])
    n_test = max(1, min(n - 1, int(math.floor(float(fraction) * n + 0.5))))
    perm = torch.randperm(n, generator=make_generator(SPLIT_SEED, "split", "digits"))
    test_idx = perm[:n_test].sort().values
    train_idx = perm[n_test:].sort().values
    return RawSplits(x[train_idx], y[train_idx], x[test_idx], y[test_idx], scale=16.0)
