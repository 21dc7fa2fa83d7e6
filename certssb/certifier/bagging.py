"""Bagging (Jia, Cao & Gong, AAAI 2021), METHOD.md 8.2 item 4.

M base models, model j trained on a bag of s samples drawn uniformly with replacement from the
n training samples (:func:`bag_indices`, regenerable from (seed, j) alone). With p_c the
probability over the bag (and the model's seed) that a base model predicts c, changing r
training samples changes a model only when its bag draws one of them, with probability
``1 - (1 - r/n)^s``; so every p_c moves by at most that, and the prediction A survives r
modified samples when ``p_A_lower - p_B_upper > 2 (1 - (1 - r/n)^s)``.

Bounds (:func:`bagging_certificate`): Clopper-Pearson on the votes of the M models with the
class-selection correction of the Gaussian family, by calling
:func:`certssb.certifier.scores.certify_scores` in hard mode with ``selection_correction=True``:
the bounds of EVERY class hold together with probability >= 1 - alpha, so they hold for the
data-dependent A and B (``pb_mode="auto"``: complement ``p_B_upper = 1 - p_A_lower`` with C
lower bounds at alpha / C when C = 2; Bonferroni ``p_B_upper = max_{c != A} upper_c`` with C
lower and C upper bounds at alpha / (2 C) otherwise). The certificate then holds with
probability >= 1 - alpha over the bags and seeds.

The largest r (:func:`bagging_modifications`) is found by bisection on the exact inequality:
each comparison is decided in floating point only when the two sides differ by far more than
its rounding error, and otherwise exactly in rational arithmetic (Python integers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from certssb.errors import ConfigError, ScoreInputError

from .partition import derive_seed
from .ranks import check_votes
from .scores import certify_scores

__all__ = ["BaggingCertificate", "bag_indices", "bagging_certificate", "bagging_modifications"]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def bag_indices(seed: int, model_index: int, n: int, s: int) -> np.ndarray:
    """Model ``model_index``'s bag: int64 [s], s draws uniform on 0..n-1 with replacement, from
    ``Generator(PCG64(derive_seed(seed, "bag", model_index)))``: any model's bag is regenerated
    from (seed, model_index, n, s) alone, independently of the other models'."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"bag seed must be an integer, got {seed!r}")
    if isinstance(model_index, bool) or not isinstance(model_index, (int, np.integer)) or model_index < 0:
        raise ConfigError(f"bag model_index must be an integer >= 0, got {model_index!r}")
    n = _positive_int(n, "bagging n (training-set size)")
    s = _positive_int(s, "bagging s (bag size)")
    rng = np.random.Generator(np.random.PCG64(derive_seed(int(seed), "bag", int(model_index))))
    return rng.integers(0, n, size=s, dtype=np.int64)


# Relative error bound of the float comparison below: u = r/n is rounded once (amplified by at
# most 1 / (1 - u) <= n in log1p), log1p and the products add a few ulps; (n + 16) * 2**-45 is
# that bound ((n + 10) * 2**-53) with a margin of 256.
def _survives(r: np.ndarray, pa: np.ndarray, pb: np.ndarray, n: int, s: int) -> np.ndarray:
    """``pa - pb > 2 (1 - (1 - r/n)^s)`` exactly (pa > pb, 0 <= r <= n), elementwise."""
    with np.errstate(divide="ignore"):
        left = s * np.log1p(-(r / n))  # log((1 - r/n)^s); -inf at r = n
    right = np.log1p(-(pa - pb) / 2.0)  # log(1 - (pa - pb)/2), finite as 0 < pa - pb <= 1
    tol = (n + 16) * 2.0**-45 * (np.abs(left) + np.abs(right))
    out = np.where(r >= n, False, left - right > tol)
    unsure = np.nonzero((r < n) & ~(left - right > tol) & ~(right - left > tol))[0]
    for i in unsure:  # (1 - r/n)^s > 1 - D/2 with D = P/Q  <=>  (n - r)^s * 2Q > n^s * (2Q - P)
        d = Fraction(float(pa[i])) - Fraction(float(pb[i]))
        num, den = d.numerator, d.denominator
        out[i] = (n - int(r[i])) ** s * 2 * den > n**s * (2 * den - num)
    return out


def bagging_modifications(p_a_lower, p_b_upper, n: int, s: int) -> np.ndarray:
    """int64 [m]: the largest r in 0..n with ``p_a_lower - p_b_upper > 2 (1 - (1 - r/n)^s)``,
    exact for the float inputs taken as exact numbers; -1 where even r = 0 fails
    (``p_a_lower <= p_b_upper``: abstain)."""
    n = _positive_int(n, "bagging n (training-set size)")
    s = _positive_int(s, "bagging s (bag size)")
    pa = np.atleast_1d(np.asarray(p_a_lower, dtype=np.float64))
    pb = np.atleast_1d(np.asarray(p_b_upper, dtype=np.float64))
    if pa.shape != pb.shape or pa.ndim != 1:
        raise ScoreInputError(f"p_a_lower and p_b_upper must be vectors of one shape, got {pa.shape} and {pb.shape}")
    if not (np.all(np.isfinite(pa)) and np.all(np.isfinite(pb))) or np.any((pa < 0) | (pa > 1) | (pb < 0) | (pb > 1)):
        raise ScoreInputError("p_a_lower and p_b_upper must be probabilities in [0, 1]")
    ok = pa > pb
    lo = np.zeros(pa.shape, dtype=np.int64)  # survives: r = 0 holds where pa > pb
    hi = np.full(pa.shape, n, dtype=np.int64)  # fails: 2 (1 - 0) = 2 > 1 >= pa - pb
    active = np.nonzero(ok)[0]
    for _ in range(math.ceil(math.log2(n)) + 1 if n > 1 else 0):
        active = active[hi[active] - lo[active] > 1]
        if active.size == 0:
            break
        mid = (lo[active] + hi[active]) // 2
        good = _survives(mid, pa[active], pb[active], n, s)
        lo[active] = np.where(good, mid, lo[active])
        hi[active] = np.where(good, hi[active], mid)
    if np.any(ok & (hi - lo > 1)):  # cannot happen: each step halves hi - lo
        raise AssertionError("bagging bisection did not converge")
    return np.where(ok, lo, -1).astype(np.int64)


@dataclass
class BaggingCertificate:
    """Per-input results; every array has length m."""

    prediction: np.ndarray  # int64: class A (most votes, ties to the smaller index)
    p_a_lower: np.ndarray  # float64: lower bound on p_A (all bounds hold together w.p. >= 1 - alpha)
    p_b_upper: np.ndarray  # float64: upper bound on max_{c != A} p_c
    modifications: np.ndarray  # int64: certified modified training samples r; -1 = abstain
    alpha_per_bound: float  # alpha of each one-sided Clopper-Pearson bound
    pb_mode: str  # "complement" or "bonferroni"


def bagging_certificate(votes, n: int, s: int, *, alpha: float, n_models=None, pb_mode: str = "auto") -> BaggingCertificate:
    """Bagging certificate from the votes int [m, C] of M base models (rows sum to M; checked
    against ``n_models`` when given), training-set size n and bag size s (module docstring)."""
    v = check_votes(votes, n_models)
    n = _positive_int(n, "bagging n (training-set size)")
    s = _positive_int(s, "bagging s (bag size)")
    if v.shape[0] == 0:
        raise ScoreInputError("votes has no rows (m = 0)")
    bounds = certify_scores(None, v, int(v[0].sum()), alpha=alpha, mode="hard", pb_mode=pb_mode,
                            selection_correction=True)
    mods = bagging_modifications(bounds.p_a_lower, bounds.p_b_upper, n, s)
    if np.any((mods >= 0) == bounds.abstain):  # both say abstain iff p_a_lower <= p_b_upper
        raise AssertionError("bagging certificate disagrees with the bounds' abstention")
    return BaggingCertificate(
        prediction=bounds.prediction,
        p_a_lower=bounds.p_a_lower,
        p_b_upper=bounds.p_b_upper,
        modifications=mods,
        alpha_per_bound=bounds.alpha_per_bound,
        pb_mode=bounds.pb_mode,
    )


# ------------------------------------------------------------------------------------------------
# the option: certifier=bagging

from typing import ClassVar  # noqa: E402

from omegaconf import MISSING  # noqa: E402

from .count import CountCertificate, CountCertifierSettings  # noqa: E402
from .settings import PB_MODES  # noqa: E402


@dataclass
class BaggingCertifierSettings(CountCertifierSettings):
    """Bagging's certificate (``ensemble=bagging``): Clopper-Pearson bounds on the vote shares with
    the class-selection correction; holds with probability at least 1 - alpha."""

    structures: ClassVar[tuple[str, ...]] = ("bags",)

    alpha: float = MISSING
    pb_mode: str = MISSING

    def check(self, run) -> None:
        super().check(run)
        self.require_range("alpha", 0.0, 1.0, low_open=True, high_open=True)
        self.require_choice("pb_mode", PB_MODES)

    def alpha_or_none(self) -> float:
        return float(self.alpha)

    def certify(self, votes, ensemble, n_train: int) -> CountCertificate:
        cert = bagging_certificate(votes.votes, n_train, int(ensemble.bag_size), alpha=float(self.alpha),
                                   n_models=votes.n_members, pb_mode=self.pb_mode)
        return CountCertificate(cert.prediction, cert.modifications, cert.modifications,
                                {"p_a_lower": cert.p_a_lower, "p_b_upper": cert.p_b_upper})
