"""Which training samples each count-certified base model sees (METHOD.md 8.2), and the
conversion of a certificate from parts/buckets to modified samples.

- ``key: index`` (:func:`partition_index`): part = (seeded permutation of the positions) mod k.
  A modified sample keeps its position, so it stays in its part: one modification touches one
  part (valid for this framework's threat, chosen samples' features and labels replaced; not
  for insertions).
- ``key: hash`` (:func:`partition_hash`): part = SHA-256 of the sample's bytes (uint8 image and
  label) mod k, as DPA and FA do (they hash pixel sums). An insertion or deletion touches one
  part; a modification is a deletion plus an insertion and touches up to two.

Hence :func:`modifications_from_parts` with ``per_modification`` 1 (index) or 2 (hash).
Also :func:`derive_seed`, the project's seed derivation without torch.
"""

from __future__ import annotations

import hashlib

import numpy as np

from certssb.errors import ConfigError, ScoreInputError

__all__ = ["derive_seed", "modifications_from_parts", "partition_hash", "partition_index"]


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 63-bit seed from ``seed`` and every key, in order: the same value as
    :func:`certssb.seeding.derive_seed` (which imports torch; the certifier must not)."""
    text = "/".join([str(int(seed))] + [str(k) for k in keys])
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    return int(value)


def partition_index(n: int, k: int, seed: int) -> np.ndarray:
    """``key: index``: int64 [n], the part (0..k-1) of the sample at each position:
    ``permutation[i] mod k`` for a permutation of 0..n-1 drawn from
    ``Generator(PCG64(derive_seed(seed, "partition_index")))``. Part sizes differ by at most 1;
    the result depends on (n, k, seed) only. Needs 1 <= k <= n (no empty part)."""
    n = _positive_int(n, "partition n (training-set size)")
    k = _positive_int(k, "partition k (number of parts)")
    if k > n:
        raise ConfigError(f"partition k={k} exceeds the training-set size n={n} (a part would be empty)")
    rng = np.random.Generator(np.random.PCG64(derive_seed(_int(seed, "partition seed"), "partition_index")))
    return (rng.permutation(n) % k).astype(np.int64)


def partition_hash(images, labels, k: int) -> np.ndarray:
    """``key: hash``: int64 [n], the part (0..k-1) of each sample:
    ``int(SHA-256(label as 8 little-endian signed bytes + image bytes in C order), big-endian)
    mod k``. A function of the sample's own bytes and label only (not of its position or of the
    other samples), identical on every machine. ``images``: uint8 [n, ...]; ``labels``: int [n]."""
    k = _positive_int(k, "partition k (number of parts)")
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim < 2:
        raise ScoreInputError(f"partition_hash needs uint8 images [n, ...], got {x.dtype} {x.shape}")
    y = np.asarray(labels)
    if y.shape != (x.shape[0],) or y.dtype == bool or not np.issubdtype(y.dtype, np.integer):
        raise ScoreInputError(f"partition_hash needs integer labels of shape [{x.shape[0]}], got {y.dtype} {y.shape}")
    if y.size and (int(y.min()) < np.iinfo(np.int64).min or int(y.max()) > np.iinfo(np.int64).max):
        raise ScoreInputError("partition_hash labels must fit in int64")
    rows = np.concatenate([y.astype("<i8").view(np.uint8).reshape(-1, 8), x.reshape(x.shape[0], -1)], axis=1)
    rows = np.ascontiguousarray(rows)
    return np.fromiter((int.from_bytes(hashlib.sha256(row.data).digest(), "big") % k for row in rows),
                       dtype=np.int64, count=rows.shape[0])


def modifications_from_parts(parts, per_modification: int) -> np.ndarray:
    """Certified modified samples from certified parts/buckets: ``floor(parts / per_modification)``
    elementwise, -1 (nothing certified) kept as -1. ``per_modification``: how many parts or
    buckets one modified sample can touch (1 for ``key: index``, 2 for ``key: hash``)."""
    per = _positive_int(per_modification, "per_modification")
    p = np.asarray(parts)
    if p.dtype == bool or not np.issubdtype(p.dtype, np.integer):
        raise ScoreInputError(f"parts must be integers, got dtype {p.dtype}")
    p = p.astype(np.int64)
    if np.any(p < -1):
        raise ScoreInputError(f"parts must be >= -1 (-1 = nothing certified), got {int(p.min())}")
    return np.where(p < 0, -1, p // per).astype(np.int64)
