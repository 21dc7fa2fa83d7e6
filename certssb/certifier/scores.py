"""From aggregated member outputs to the bounds (pA_lower, pB_upper) and the gap G.

Why the selection correction (default ON) is needed
---------------------------------------------------
The predicted class A = argmax of the empirical scores is chosen from the SAME members that
estimate its score, so "the alpha-bound of class A" is not a bound for a fixed class: with a
tie p = (0.5, 0.5) each class's lower bound exceeds 0.5 with probability ~alpha, and one of
the two is always selected, so a false certificate occurs with probability ~2 alpha.
Fix (union bound): compute the bounds for EVERY class so that all hold simultaneously with
probability >= 1 - alpha; then they hold in particular for the data-dependent A and B.
- ``complement`` (pB_upper = 1 - pA_lower, valid since class scores sum to 1):
  C lower bounds, each at alpha / C.
- ``bonferroni`` (pB_upper = max_{c != A} upper_c): C lower + C upper bounds, each at
  alpha / (2 C).
With ``selection_correction=False`` the paper's convention is used (complement: alpha;
bonferroni: alpha / 2 each). It ignores the selection and is kept for comparisons only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from certssb.errors import ConfigError, ScoreInputError

from .bounds import (
    _check_alpha,
    _check_n,
    clopper_pearson_lower,
    clopper_pearson_upper,
    hoeffding_lower,
    hoeffding_upper,
)

__all__ = ["BoundOptions", "ScoreBounds", "check_scores", "certify_scores", "expected_gap", "per_bound_alpha"]

# Largest double below 1 and smallest positive normal double: clipping pA_lower down / pB_upper
# up to these is conservative and keeps Phi^-1 finite (never triggered by valid bounds).
_ONE_MINUS = float(np.nextafter(1.0, 0.0))
_TINY = float(np.finfo(np.float64).tiny)


@dataclass(frozen=True)
class BoundOptions:
    """How each one-sided bound is computed (the keyword arguments of :func:`certify_scores`)."""

    alpha: float
    mode: str = "soft"
    pb_mode: str = "auto"
    selection_correction: bool = True


@dataclass
class ScoreBounds:
    """Per-input bounds; every array has length m (the number of inputs)."""

    prediction: np.ndarray  # int64: class A (argmax of empirical scores, ties -> lowest index)
    runner_up: np.ndarray  # int64: class B (argmax over the other classes)
    p_a_lower: np.ndarray  # float64: lower bound on pA
    p_b_upper: np.ndarray  # float64: upper bound on pB
    gap: np.ndarray  # float64: Phi^-1(pA_lower) - Phi^-1(pB_upper), 0 when abstaining
    abstain: np.ndarray  # bool: pA_lower <= pB_upper (no certificate)
    p_a_mean: np.ndarray  # float64: empirical score of A (diagnostic only)
    p_b_mean: np.ndarray  # float64: empirical pB counterpart of p_b_upper (diagnostic only)
    alpha_per_bound: float  # alpha used for each individual one-sided bound
    pb_mode: str  # "complement" or "bonferroni" (resolved from "auto")
    mode: str  # "soft" or "hard"


def per_bound_alpha(alpha: float, num_classes: int, pb_mode: str, selection_correction: bool) -> float:
    """Alpha for each one-sided bound (see the module docstring)."""
    a = float(_check_alpha(alpha))
    if pb_mode not in ("complement", "bonferroni"):
        raise ConfigError(f"pb_mode must be 'complement' or 'bonferroni' here, got {pb_mode!r}")
    if selection_correction:
        return a / num_classes if pb_mode == "complement" else a / (2 * num_classes)
    return a if pb_mode == "complement" else a / 2


def _gap(p_a_lower: np.ndarray, p_b_upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    abstain = ~(p_a_lower > p_b_upper)
    pa = np.minimum(p_a_lower, _ONE_MINUS)
    pb = np.maximum(p_b_upper, _TINY)
    gap = np.where(abstain, 0.0, stats.norm.ppf(pa) - stats.norm.ppf(pb))
    gap = np.where(abstain, 0.0, np.maximum(gap, 0.0))
    if not np.all(np.isfinite(gap)):  # cannot happen after the clipping above
        raise AssertionError("non-finite certified gap")
    return gap.astype(np.float64), abstain


# Relative slack for float64 sums of n probability vectors (each row of a softmax sums to 1 up
# to ~1e-16 per member); anything above it is not a sum of n probability vectors.
_SUM_SLACK = 1e-6


def _first_bad_row(bad: np.ndarray) -> int:
    return int(np.flatnonzero(bad)[0])


def check_scores(prob_sum, votes, n, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate the certifier's input; returns (the scores of ``mode`` as float64 [m, C], n).

    Rejected with :class:`ScoreInputError` (one line): a missing or non-[m, C] array, ``prob_sum``
    and ``votes`` of different shapes, ``n`` not of shape [] or [m], NaN/inf, negative scores,
    soft rows summing above n (the complement bound ``pB <= 1 - pA`` needs scores that sum to at
    most 1 per member: sigmoid-style or unnormalised scores would certify falsely), votes that
    are not integers or sum above n.
    """
    source = prob_sum if mode == "soft" else votes
    if source is None:
        raise ScoreInputError(f"mode={mode!r} needs {'prob_sum' if mode == 'soft' else 'votes'}, got None")
    data = np.asarray(source, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] < 2:
        raise ScoreInputError(f"class scores must have shape [m, C] with C >= 2, got {data.shape}")
    other = votes if mode == "soft" else prob_sum
    if other is not None and np.shape(other) != data.shape:
        raise ScoreInputError(f"prob_sum and votes must have the same shape, got {np.shape(prob_sum)} "
                              f"and {np.shape(votes)}")
    m = data.shape[0]
    n_arr = _check_n(n)
    if n_arr.ndim > 1 or (n_arr.ndim == 1 and n_arr.shape[0] != m):
        raise ScoreInputError(f"n must be a scalar or have shape [m]={m}, got {n_arr.shape}")
    n_col = n_arr.reshape(-1, 1) if n_arr.ndim == 1 else n_arr
    if not np.all(np.isfinite(data)):
        raise ScoreInputError(f"aggregated class scores contain NaN or inf (row {_first_bad_row(~np.isfinite(data).all(1))})")
    if np.any(data < 0):
        row = _first_bad_row((data < 0).any(1))
        raise ScoreInputError(f"class scores must be >= 0; row {row} has {data[row].min():.6g}")
    row_n = np.broadcast_to(n_arr, (m,)).astype(np.float64)
    sums = data.sum(axis=1)
    if mode == "soft":
        over = sums > row_n * (1 + _SUM_SLACK)
        if np.any(over):
            row = _first_bad_row(over)
            raise ScoreInputError(f"soft score rows must sum to at most n (sums of n probability vectors); "
                                  f"row {row} sums to {sums[row]:.6g} > n={row_n[row]:.6g} "
                                  f"(sigmoid or unnormalised scores?)")
    else:
        if np.any(data != np.round(data)) or np.any(data > n_col):
            raise ScoreInputError("votes must be integers in [0, n]")
        if np.any(sums > row_n):
            row = _first_bad_row(sums > row_n)
            raise ScoreInputError(f"votes of a row sum to more than n (each member votes once): row {row} "
                                  f"sums to {int(sums[row])} > n={int(row_n[row])}")
    return data, n_arr


def certify_scores(
    prob_sum,
    votes,
    n,
    *,
    alpha: float,
    mode: str = "soft",
    pb_mode: str = "auto",
    selection_correction: bool = True,
) -> ScoreBounds:
    """Bound pA / pB for m inputs from the outputs of n evaluated members.

    prob_sum: float [m, C], sum over members of softmax vectors (used when mode="soft").
    votes: int [m, C], members' argmax counts (used when mode="hard").
    n: number of members actually evaluated (int, or int array [m]).
    soft -> Hoeffding on prob_sum / n; hard -> Clopper-Pearson on votes.
    """
    if mode not in ("soft", "hard"):
        raise ConfigError(f"certifier mode must be 'soft' or 'hard', got {mode!r}")
    if pb_mode not in ("auto", "complement", "bonferroni"):
        raise ConfigError(f"pb_mode must be 'auto', 'complement' or 'bonferroni', got {pb_mode!r}")
    _check_alpha(alpha)
    data, n_arr = check_scores(prob_sum, votes, n, mode)
    m, num_classes = data.shape
    n_col = n_arr.reshape(-1, 1) if n_arr.ndim == 1 else n_arr

    if pb_mode == "auto":
        pb_mode = "complement" if num_classes == 2 else "bonferroni"
    a = per_bound_alpha(alpha, num_classes, pb_mode, selection_correction)

    if mode == "soft":
        scores = np.clip(data / n_col, 0.0, 1.0)  # clipping only removes rounding; conservative
        lower = hoeffding_lower(scores, n_col, a)
        upper = hoeffding_upper(scores, n_col, a) if pb_mode == "bonferroni" else None
    else:
        counts = data.astype(np.int64)
        scores = counts / n_col
        lower = clopper_pearson_lower(counts, n_col, a)
        upper = clopper_pearson_upper(counts, n_col, a) if pb_mode == "bonferroni" else None

    rows = np.arange(m)
    prediction = np.argmax(scores, axis=1).astype(np.int64)  # first maximum = lowest index
    others = scores.copy()
    others[rows, prediction] = -np.inf
    runner_up = np.argmax(others, axis=1).astype(np.int64)

    p_a_lower = lower[rows, prediction]
    p_a_mean = scores[rows, prediction]
    if pb_mode == "complement":
        p_b_upper = 1.0 - p_a_lower
        p_b_mean = 1.0 - p_a_mean
    else:
        up = upper.copy()
        up[rows, prediction] = -np.inf
        p_b_upper = up.max(axis=1)
        p_b_mean = scores[rows, runner_up]
    gap, abstain = _gap(p_a_lower, p_b_upper)
    return ScoreBounds(
        prediction=prediction,
        runner_up=runner_up,
        p_a_lower=p_a_lower.astype(np.float64),
        p_b_upper=p_b_upper.astype(np.float64),
        gap=gap,
        abstain=abstain,
        p_a_mean=p_a_mean.astype(np.float64),
        p_b_mean=p_b_mean.astype(np.float64),
        alpha_per_bound=float(a),
        pb_mode=pb_mode,
        mode=mode,
    )


def expected_gap(p_a_mean, p_b_mean, clip: float = 1e-6) -> np.ndarray:
    """Diagnostic gap on raw means (NEVER a certificate): Phi^-1(pA) - Phi^-1(pB) with both
    clipped to [clip, 1 - clip]; 0 where pA <= pB."""
    if not (0.0 < clip < 0.5):
        raise ConfigError(f"expected_gap clip must be in (0, 0.5), got {clip!r}")
    pa = np.clip(np.asarray(p_a_mean, dtype=np.float64), clip, 1.0 - clip)
    pb = np.clip(np.asarray(p_b_mean, dtype=np.float64), clip, 1.0 - clip)
    g = stats.norm.ppf(pa) - stats.norm.ppf(pb)
    return np.where(pa > pb, g, 0.0).astype(np.float64)
