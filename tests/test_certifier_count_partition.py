"""Partitions for DPA/FA (``key: index`` and ``key: hash``) and the parts -> modifications rule."""

import hashlib

import numpy as np
import pytest
from scipy import stats

from certssb.certifier.partition import modifications_from_parts, partition_hash, partition_index
from certssb.errors import ConfigError, ScoreInputError

# ---------------------------------------------------------------- key: index


@pytest.mark.parametrize("n,k", [(1, 1), (10, 3), (100, 7), (1000, 1000), (60000, 50), (12345, 16)])
def test_index_part_sizes_differ_by_at_most_one(n, k):
    parts = partition_index(n, k, seed=5)
    assert parts.dtype == np.int64 and parts.shape == (n,)
    assert parts.min() >= 0 and parts.max() <= k - 1
    sizes = np.bincount(parts, minlength=k)
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == n


def test_index_is_a_deterministic_function_of_n_k_seed():
    a = partition_index(500, 7, seed=3)
    np.testing.assert_array_equal(a, partition_index(500, 7, seed=3))
    assert not np.array_equal(a, partition_index(500, 7, seed=4))
    # a seeded permutation, not the positions mod k
    assert not np.array_equal(a, np.arange(500) % 7)
    # the part of a position does not depend on anything but (n, k, seed): e.g. no global RNG
    np.random.seed(0)
    np.testing.assert_array_equal(a, partition_index(500, 7, seed=3))


@pytest.mark.parametrize("n,k,seed", [(5, 6, 0), (0, 1, 0), (5, 0, 0), (5, 2, 1.5), (5.0, 2, 0)])
def test_index_rejects_bad_config(n, k, seed):
    with pytest.raises(ConfigError) as err:
        partition_index(n, k, seed)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- key: hash


def _dataset(rng, n=300, shape=(4, 4, 3)):
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8), rng.integers(0, 10, size=n)


def test_hash_known_value():
    # the encoding, independently: 8 little-endian bytes of the label, then the image bytes
    img = np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3)
    digest = hashlib.sha256((7).to_bytes(8, "little", signed=True) + bytes(range(12))).digest()
    for k in (2, 10, 97, 1000):
        assert partition_hash(img, [7], k)[0] == int.from_bytes(digest, "big") % k


def test_hash_ignores_position_and_other_samples():
    rng = np.random.default_rng(0)
    x, y = _dataset(rng)
    parts = partition_hash(x, y, 17)
    perm = rng.permutation(len(y))
    np.testing.assert_array_equal(partition_hash(x[perm], y[perm], 17), parts[perm])
    # a subset, and each sample alone
    np.testing.assert_array_equal(partition_hash(x[:50], y[:50], 17), parts[:50])
    for i in (0, 7, 123):
        assert partition_hash(x[i : i + 1], y[i : i + 1], 17)[0] == parts[i]
    # non-contiguous views hash their values
    xf = np.asfortranarray(x)
    np.testing.assert_array_equal(partition_hash(xf, y.astype(np.int32), 17), parts)


def test_hash_changing_one_sample_moves_only_that_sample():
    rng = np.random.default_rng(1)
    x, y = _dataset(rng)
    parts = partition_hash(x, y, 50)
    moved = 0
    for i in range(0, 300, 10):
        x2, y2 = x.copy(), y.copy()
        x2[i, 0, 0, 0] ^= 1  # one bit of one pixel
        p2 = partition_hash(x2, y2, 50)
        others = np.arange(300) != i
        np.testing.assert_array_equal(p2[others], parts[others])
        moved += p2[i] != parts[i]
        y3 = y.copy()
        y3[i] = (y3[i] + 1) % 10  # the label alone also enters the hash
        p3 = partition_hash(x, y3, 50)
        np.testing.assert_array_equal(p3[others], parts[others])
        moved += p3[i] != parts[i]
    assert moved >= 50  # of 60 changes: each stays with probability 1/50


def test_hash_parts_look_uniform():
    rng = np.random.default_rng(2)
    x, y = _dataset(rng, n=5000, shape=(8,))
    counts = np.bincount(partition_hash(x, y, 10), minlength=10)
    assert stats.chisquare(counts).pvalue > 1e-6  # 9 dof; fails for a biased hash (e.g. pixel sums)


@pytest.mark.parametrize(
    "x,y,k,err",
    [
        (np.zeros((3, 2), np.float32), [0, 1, 2], 5, ScoreInputError),
        (np.zeros((3,), np.uint8), [0, 1, 2], 5, ScoreInputError),
        (np.zeros((3, 2), np.uint8), [0, 1], 5, ScoreInputError),
        (np.zeros((3, 2), np.uint8), [0.0, 1.0, 2.0], 5, ScoreInputError),
        (np.zeros((3, 2), np.uint8), [0, 1, 2], 0, ConfigError),
    ],
)
def test_hash_rejects_bad_input(x, y, k, err):
    with pytest.raises(err) as e:
        partition_hash(x, y, k)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------- parts -> modifications


def test_modifications_from_parts():
    parts = np.array([-1, 0, 1, 2, 3, 7])
    np.testing.assert_array_equal(modifications_from_parts(parts, 1), parts)
    np.testing.assert_array_equal(modifications_from_parts(parts, 2), [-1, 0, 0, 1, 1, 3])
    np.testing.assert_array_equal(modifications_from_parts(parts, 3), [-1, 0, 0, 0, 1, 2])
    assert modifications_from_parts(parts, 2).dtype == np.int64


@pytest.mark.parametrize("parts,per", [([-2, 1], 1), ([1.5], 1), ([1], 0), ([1], 1.0)])
def test_modifications_from_parts_rejects_bad_input(parts, per):
    with pytest.raises((ScoreInputError, ConfigError)) as e:
        modifications_from_parts(parts, per)
    assert "\n" not in str(e.value)
