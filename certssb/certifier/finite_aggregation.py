"""Finite Aggregation (Wang, Levine & Feizi, ICML 2022), METHOD.md 8.2 item 2.

Training samples are hashed into B = k*d buckets; bucket h feeds the d base models
``bucket_models[h]`` (its SPREAD), so each model is trained on d buckets and a corrupted bucket
can change the votes of d models. A certificate counts corrupted BUCKETS: one inserted or
deleted sample corrupts one bucket, one modified sample up to two.

Bucket structure (:func:`fa_bucket_models`): bucket h feeds models ``(h + s) mod k*d`` for s in
a set of d distinct shifts, as in the FA reference code (``wangwenxiao/FiniteAggregation``,
``FiniteAggregation_data_norm_hash.py``, reused by ``k1rezaei/DPA-election``), which draws the
shifts with ``random.seed(999999999 + 208); random.sample(range(k*d), d)``. The default here is
the consecutive shifts ``0..d-1`` (bucket h feeds models h, h+1, ..., h+d-1 mod k*d); pass
``shifts`` to use others. Any shifts give a valid certificate: the bound below holds for every
bucket->models map; with d = 1 (shift 0) bucket h is model h's part and FA is DPA exactly.

Certificate: for c != y, corrupting bucket h changes the votes of its d models, each lowering
``n_y - n_c`` by at most ``1 + [f(x) = y] - [f(x) = c]`` (2 from y to c, 1 from another class
to c, 0 from c). So ``Delta_h = sum over the models of h of that`` bounds what bucket h can take
from gap_c (a model in several corrupted buckets is counted for each: an upper bound), and the
prediction survives any b corrupted buckets if ``gap_c - (sum of the b largest Delta_h) >= 0``
for every c. The certificate is the largest such b: a lower bound on the smallest number of
buckets that change the prediction, minus one (exact when d = 1).
"""

from __future__ import annotations

import numpy as np

from certssb.errors import ConfigError, ScoreInputError

from .ranks import check_predictions, margin, votes_from_predictions

__all__ = ["buckets_needed", "check_bucket_models", "fa_bucket_models", "fa_certificate", "fa_model_buckets"]

_CHUNK = 1024  # inputs per block: keeps the [inputs, buckets] arrays small


def _shifts(k, d, shifts) -> tuple[int, np.ndarray]:
    for name, val in (("k", k), ("d", d)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
            raise ConfigError(f"finite aggregation {name} must be an integer >= 1, got {val!r}")
    n = int(k) * int(d)
    s = np.arange(int(d), dtype=np.int64) if shifts is None else np.asarray(shifts)
    if s.shape != (int(d),) or s.dtype == bool or not np.issubdtype(s.dtype, np.integer):
        raise ConfigError(f"finite aggregation shifts must be d={d} integers, got {shifts!r}")
    s = s.astype(np.int64) % n
    if np.unique(s).size != s.size:
        raise ConfigError(f"finite aggregation shifts must be distinct modulo k*d={n}, got {shifts!r}")
    return n, s


def fa_bucket_models(k: int, d: int, shifts=None) -> np.ndarray:
    """int64 [k*d, d]: row h = the models bucket h feeds, ``(h + shifts) mod k*d``
    (default shifts 0..d-1). There are k*d buckets and k*d models; each model gets d buckets."""
    n, s = _shifts(k, d, shifts)
    return (np.arange(n, dtype=np.int64)[:, None] + s[None, :]) % n


def fa_model_buckets(k: int, d: int, shifts=None) -> np.ndarray:
    """int64 [k*d, d]: row j = the buckets model j is trained on, ``(j - shifts) mod k*d``
    (the inverse of :func:`fa_bucket_models` with the same shifts)."""
    n, s = _shifts(k, d, shifts)
    return (np.arange(n, dtype=np.int64)[:, None] - s[None, :]) % n


def check_bucket_models(bucket_models, n_models: int) -> np.ndarray:
    """``bucket_models`` as int64 [B, d] (B, d >= 1), entries model indices in 0..n_models-1,
    distinct within a row; otherwise :class:`ScoreInputError` (one line)."""
    if bucket_models is None:
        raise ScoreInputError("bucket_models is missing (got None)")
    b = np.asarray(bucket_models)
    if b.ndim != 2 or b.shape[0] < 1 or b.shape[1] < 1 or b.dtype == bool or not np.issubdtype(b.dtype, np.integer):
        raise ScoreInputError(f"bucket_models must be an integer array [buckets, d] with both >= 1, got "
                              f"{b.dtype} {b.shape}")
    b = b.astype(np.int64)
    if np.any(b < 0) or np.any(b >= n_models):
        raise ScoreInputError(f"bucket_models entries must be model indices in 0..{n_models - 1}, got values in "
                              f"[{int(b.min())}, {int(b.max())}]")
    srt = np.sort(b, axis=1)
    if np.any(srt[:, 1:] == srt[:, :-1]):
        raise ScoreInputError(f"bucket_models row {int(np.nonzero((srt[:, 1:] == srt[:, :-1]).any(1))[0][0])} "
                              f"names a model twice")
    return b


def incidence(bucket_models: np.ndarray, n_models: int) -> np.ndarray:
    """float64 [M, B]: 1 where model j is fed by bucket h (rows of bucket_models are distinct)."""
    inc = np.zeros((n_models, bucket_models.shape[0]), dtype=np.float64)
    inc[bucket_models, np.arange(bucket_models.shape[0])[:, None]] = 1.0
    return inc


def per_bucket(per_model: np.ndarray, inc: np.ndarray) -> np.ndarray:
    """int64 [m, B]: for each bucket, the sum of ``per_model`` [m, M] over the models it feeds.
    A float64 product is exact here: the terms are small integers (|sum| << 2**53)."""
    return np.rint(per_model.astype(np.float64) @ inc).astype(np.int64)


def buckets_needed(need, reducers) -> np.ndarray:
    """Smallest t such that the t largest ``reducers[i]`` (all >= 0) sum to >= ``need[i]``;
    0 where need <= 0; B + 1 (impossible) where all B of them sum to less. int64 [m]."""
    need = np.asarray(need, dtype=np.int64)
    red = np.asarray(reducers, dtype=np.int64)
    if np.any(red < 0):
        raise AssertionError("bucket reducers must be >= 0")
    total = np.cumsum(-np.sort(-red, axis=1), axis=1)  # sums of the t largest, t = 1..B
    t = 1 + (total < need[:, None]).sum(axis=1)  # cumsums increase, so this counts the short prefixes
    return np.where(need <= 0, 0, t).astype(np.int64)


def fa_certificate(predictions, bucket_models, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """FA prediction and certificate from per-model predictions int [m, M] (e.g.
    :func:`~certssb.certifier.ranks.predictions_from_ranks`) and ``bucket_models`` int [B, d].

    Returns ``(prediction, buckets)``, int64 [m] each: ``prediction`` = the class with the most
    votes (ties to the smaller index); ``buckets`` = the largest b such that for every c != y,
    gap_c minus the sum of the b largest Delta_h is >= 0 (module docstring): any b corrupted
    buckets leave the prediction unchanged. Always in 0..B (B where no b buckets can change it).
    """
    p = check_predictions(predictions, num_classes)
    b = check_bucket_models(bucket_models, p.shape[1])
    inc = incidence(b, p.shape[1])
    n_buckets = b.shape[0]
    votes = votes_from_predictions(p, num_classes)
    y = np.argmax(votes, axis=1).astype(np.int64)
    certs = np.full(p.shape[0], n_buckets, dtype=np.int64)
    for lo in range(0, p.shape[0], _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        pc, yc = p[sl], y[sl]
        is_y = (pc == yc[:, None]).astype(np.int64)
        for c in range(int(num_classes)):
            rival = yc != c
            # y stays ahead of c while the margin n_y - n_c + [c > y] = gap_c + 1 stays >= 1.
            need = np.where(rival, margin(votes[sl], yc, np.full_like(yc, c)), 0)
            delta = per_bucket(1 + is_y - (pc == c).astype(np.int64), inc)
            certs[sl] = np.minimum(certs[sl], np.where(rival, buckets_needed(need, delta) - 1, n_buckets))
    return y, np.minimum(certs, n_buckets)


# ------------------------------------------------------------------------------------------------
# the option: certifier=fa

from dataclasses import dataclass  # noqa: E402
from typing import ClassVar  # noqa: E402

from .count import CountCertificate, CountCertifierSettings, to_modifications  # noqa: E402
from .ranks import predictions_from_ranks  # noqa: E402


@dataclass
class FASettings(CountCertifierSettings):
    """Finite Aggregation's certificate from every model's vote (``ensemble=finite_aggregation``)."""

    structures: ClassVar[tuple[str, ...]] = ("buckets",)
    needs_ranks: ClassVar[bool] = True

    def certify(self, votes, ensemble, n_train: int) -> CountCertificate:
        predictions = predictions_from_ranks(votes.ranks)
        prediction, buckets = fa_certificate(predictions, ensemble.bucket_models(), votes.ranks.shape[-1])
        return CountCertificate(prediction, to_modifications(buckets, ensemble), buckets)
