"""One-sided confidence bounds for the smoothed classifier's class scores.

Every bound holds with probability at least ``1 - alpha`` for a FIXED class (the caller
splits alpha when several bounds must hold together, see :mod:`certssb.certifier.scores`).

- Hoeffding: the mean of ``n`` i.i.d. scores in [0, 1] (soft aggregation);
  ``mean -/+ sqrt(ln(1/alpha) / (2 n))``, clipped to [0, 1].
- Clopper-Pearson: ``k`` successes of ``n`` Bernoulli trials (hard votes), exact:
  lower ``= Beta.ppf(alpha; k, n-k+1)`` (0 when ``k = 0``),
  upper ``= Beta.ppf(1-alpha; k+1, n-k)`` (1 when ``k = n``).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from certssb.errors import ConfigError

__all__ = [
    "hoeffding_margin",
    "hoeffding_lower",
    "hoeffding_upper",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
]


def _check_alpha(alpha) -> np.ndarray:
    a = np.asarray(alpha, dtype=np.float64)
    if not np.all(np.isfinite(a)) or np.any(a <= 0.0) or np.any(a >= 1.0):
        raise ConfigError(f"alpha must satisfy 0 < alpha < 1, got {alpha!r}")
    return a


def _check_n(n) -> np.ndarray:
    arr = np.asarray(n)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ConfigError(f"n (number of members) must be a positive integer, got {n!r}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 1) or np.any(arr != np.floor(arr)):
        raise ConfigError(f"n (number of members) must be an integer >= 1, got {n!r}")
    return arr.astype(np.int64)


def _check_mean(mean) -> np.ndarray:
    m = np.asarray(mean, dtype=np.float64)
    if not np.all(np.isfinite(m)):
        raise ConfigError("empirical mean scores must be finite; check the aggregated scores")
    return m


def _check_k(k, n: np.ndarray) -> np.ndarray:
    arr = np.asarray(k)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ConfigError("vote counts k must be integers")
    if not np.all(np.isfinite(arr)) or np.any(arr != np.floor(arr)):
        raise ConfigError("vote counts k must be integers")
    if np.any(arr < 0) or np.any(arr > n):
        raise ConfigError("vote counts k must satisfy 0 <= k <= n")
    return arr.astype(np.int64)


def hoeffding_margin(n, alpha) -> np.ndarray:
    """Hoeffding one-sided margin ``sqrt(ln(1/alpha) / (2 n))``."""
    n = _check_n(n)
    a = _check_alpha(alpha)
    return np.sqrt(np.log(1.0 / a) / (2.0 * n))


def hoeffding_lower(mean, n, alpha) -> np.ndarray:
    """Lower (1-alpha) bound on E[score] from the mean of n i.i.d. scores in [0, 1]."""
    m = _check_mean(mean)
    return np.clip(m - hoeffding_margin(n, alpha), 0.0, 1.0)


def hoeffding_upper(mean, n, alpha) -> np.ndarray:
    """Upper (1-alpha) bound on E[score] from the mean of n i.i.d. scores in [0, 1]."""
    m = _check_mean(mean)
    return np.clip(m + hoeffding_margin(n, alpha), 0.0, 1.0)


def clopper_pearson_lower(k, n, alpha) -> np.ndarray:
    """Exact one-sided lower (1-alpha) bound on p from k ~ Binomial(n, p); 0 when k = 0."""
    n = _check_n(n)
    a = _check_alpha(alpha)
    k = _check_k(k, n)
    k, n, a = np.broadcast_arrays(k, n, a)
    safe_k = np.where(k == 0, 1, k)  # placeholder so beta.ppf never sees a = 0
    out = stats.beta.ppf(a, safe_k, n - safe_k + 1)
    return np.where(k == 0, 0.0, out).astype(np.float64)


def clopper_pearson_upper(k, n, alpha) -> np.ndarray:
    """Exact one-sided upper (1-alpha) bound on p from k ~ Binomial(n, p); 1 when k = n."""
    n = _check_n(n)
    a = _check_alpha(alpha)
    k = _check_k(k, n)
    k, n, a = np.broadcast_arrays(k, n, a)
    safe_k = np.where(k == n, n - 1, k)  # placeholder so beta.ppf never sees b = 0
    out = stats.beta.ppf(1.0 - a, safe_k + 1, n - safe_k)
    return np.where(k == n, 1.0, out).astype(np.float64)
