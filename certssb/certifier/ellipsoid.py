"""Certificates in the attacker's terms, from the exact ellipsoid (METHOD.md sections 3 and 7.3).

With per-sample sigmas the joint smoothing noise is N(0, diag(sigma_x^2 I, sigma_1^2 I, ...)),
and a prediction with gap G = Phi^-1(pA_lower) - Phi^-1(pB_upper) is certified for every joint
perturbation (test trigger delta, training perturbations delta_i) with

    ||delta||^2 / sigma_x^2 + sum_i ||delta_i||^2 / sigma_i^2 < (G/2)^2.

``sigma_i`` are the *certificate training sigmas*: the per-sample training sigmas the certificate
may assume (sigma_0 everywhere for RAB). ``G/2`` is called the whitened budget here.

Two readings of the ellipsoid:

- coverage of a realised attack: the left side with the attack's own perturbations
  (:func:`whitened_attack_size`) against the budget;
- the certified poisoned-sample count (:func:`certified_poison_count`): the largest ``k`` such that
  ANY ``k`` training samples moved by at most ``eta`` each plus a test trigger of at most ``eps``
  stay inside. The attacker picks the samples with the smallest sigmas, so the left side is
  ``eps^2 / sigma_x^2 + eta^2 * sum_{j<=k} sigma_(j)^-2`` with the sigmas in increasing order.
  ``-1`` means "not certified": even the test trigger alone (k = 0) is not covered, which is always
  the case for an abstention (G = 0).

After the storage-update memory, see :func:`covered_after_memory` for what the exact test becomes.
"""

from __future__ import annotations

import numpy as np

from certssb.errors import ConfigError

__all__ = [
    "NOT_CERTIFIED",
    "certified_poison_count",
    "covered_after_memory",
    "poison_count_after_memory",
    "poison_count_grid",
    "poison_certified_accuracy",
    "whitened_attack_size",
]

NOT_CERTIFIED = -1  # certified_poison_count when even the test trigger alone is not covered

# Counts of the poison-count curve: 0, 1, 2, 5, 10, 20, 50, ... (capped at the training-set size).
_MANTISSAS = (1, 2, 5)


def _positive(values, name: str) -> np.ndarray:
    s = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(s)) or np.any(s <= 0.0):
        raise ConfigError(f"{name} must be finite and > 0 everywhere")
    return s


def _non_negative(values, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)) or np.any(v < 0.0):
        raise ConfigError(f"{name} must be finite and >= 0 everywhere")
    return v


def whitened_attack_size(test_delta_l2, sigma_x, train_delta_l2, train_sigmas_of_poisoned) -> np.ndarray:
    """Per test input ``sqrt(||delta||^2 / sigma_x^2 + sum_{i in P} ||delta_i||^2 / sigma_i^2)``.

    test_delta_l2, sigma_x: [m] (or scalars); train_delta_l2 and train_sigmas_of_poisoned: [p],
    the poisoned samples' realised trigger sizes and their certificate training sigmas.
    The attack is covered where this is strictly below the whitened budget G/2.
    """
    d = _non_negative(test_delta_l2, "test_delta_l2")
    sx = _positive(sigma_x, "sigma_x")
    dt = _non_negative(train_delta_l2, "train_delta_l2").reshape(-1)
    st = _positive(train_sigmas_of_poisoned, "certificate training sigmas").reshape(-1)
    if dt.shape != st.shape:
        raise ConfigError(f"{dt.size} poisoned trigger sizes but {st.size} training sigmas")
    train_term = float(np.sum((dt / st) ** 2))
    return np.sqrt((d / sx) ** 2 + train_term)


def certified_poison_count(budget, sigma_x, certificate_train_sigmas, eps: float, eta: float) -> np.ndarray:
    """Largest ``k`` with ``eps^2/sigma_x^2 + eta^2 * sum_{j<=k} sigma_(j)^-2 < budget^2`` per input.

    budget: [m] whitened budgets G/2 (0 = abstain); sigma_x: [m] or scalar; the certificate
    training sigmas: [n], in any order (sorted here, smallest first: the attacker's choice).
    Returns int64 in {-1, 0, ..., n}; -1 (:data:`NOT_CERTIFIED`) where even k = 0 fails.
    """
    b = _non_negative(budget, "budget").reshape(-1)
    sx = np.broadcast_to(_positive(sigma_x, "sigma_x"), b.shape)
    s = np.sort(_positive(certificate_train_sigmas, "certificate training sigmas").reshape(-1))
    eps, eta = float(eps), float(eta)
    if not (np.isfinite(eps) and eps >= 0.0 and np.isfinite(eta) and eta >= 0.0):
        raise ConfigError(f"eps and eta must be finite and >= 0; got eps={eps!r}, eta={eta!r}")
    slack = b ** 2 - (eps / sx) ** 2  # what the poisoned samples may use
    cost = eta ** 2 * np.cumsum(s ** -2.0)  # cost[k-1]: the k cheapest samples, non-decreasing
    # number of k >= 1 with cost_k < slack (cost is sorted, so this is a binary search)
    count = np.searchsorted(cost, slack, side="left").astype(np.int64)
    return np.where(slack > 0.0, count, NOT_CERTIFIED).astype(np.int64)


def poison_count_grid(n_train: int) -> list[int]:
    """0, 1, 2, 5, 10, 20, 50, ... up to ``n_train`` (``n_train`` itself included as the last)."""
    n = int(n_train)
    if n < 0:
        raise ConfigError(f"training-set size must be >= 0, got {n_train!r}")
    grid, scale = [0], 1
    while True:
        for m in _MANTISSAS:
            if m * scale >= n:
                return grid + ([n] if n > 0 else [])
            grid.append(m * scale)
        scale *= 10


def poison_certified_accuracy(correct, counts, grid) -> np.ndarray:
    """CA(k) = mean(correct and certified_poison_count >= k) for each k of ``grid``."""
    c = np.asarray(correct).astype(bool).reshape(-1)
    k = np.asarray(counts).astype(np.int64).reshape(-1)
    if c.shape != k.shape or c.size == 0:
        raise ConfigError(f"correct ({c.size}) and counts ({k.size}) must be non-empty and of equal length")
    g = np.asarray(grid, dtype=np.int64).reshape(-1)
    return (c[None, :] & (k[None, :] >= g[:, None])).mean(axis=1).astype(np.float64)


def _memory_parts(action, radius_raw, radius_final):
    act = np.asarray(action).astype(str).reshape(-1)
    r0 = _non_negative(radius_raw, "raw radius").reshape(-1)
    r1 = _non_negative(radius_final, "final radius").reshape(-1)
    if not (act.shape == r0.shape == r1.shape):
        raise ConfigError("action, raw and final radius must have the same length")
    relabelled = act == "relabelled"
    if np.any(~relabelled & (r1 > r0 * (1.0 + 1e-12))):
        raise ConfigError("the memory never enlarges a kept or trimmed radius")
    rho = np.divide(r1, r0, out=np.zeros_like(r1), where=r0 > 0.0)
    return relabelled, np.minimum(rho, 1.0), r1


def covered_after_memory(action, radius_raw, radius_final, budget, whitened, test_delta_l2, joint_l2) -> np.ndarray:
    """Exact coverage of the realised attack by the certificate the storage-update memory reports.

    The memory turns an input's raw certificate (label c, L2 radius R = s * G/2, where s is the
    variant's L2 scale, e.g. min(sigma_x, min_i sigma_i) for ``joint``) into a final one
    (label c', radius R'). The final certificate is what the deployed classifier guarantees:

    - ``kept`` / ``trimmed`` (c' = c, R' <= R): the certified set becomes the raw ellipsoid scaled by
      rho = R'/R (budget rho * G/2) AND a test trigger ||delta|| < R'. The scaled ellipsoid lies
      inside the raw one, so the smoothed classifier still answers c on (D - Delta, x + delta);
      ||delta|| < R' keeps the query x + delta out of every stored ball of another label (the memory
      keeps d_j >= R_j + R' for all of them, earlier and later), so the deployed classifier answers
      c too. The L2 ball inscribed in this set has radius exactly R' (for ``joint``), so the exact
      test never claims less than the memory's own radius, and never more than the raw ellipsoid.
    - ``relabelled`` (x lies inside the stored ball of another input j*; c' = c_j*, R' = R_j* - d_j*):
      the certificate now comes from j*'s ball, not from x's ellipsoid, so only the L2 statement of
      the memory is used: covered iff the attack's joint L2 size is below R'. Then, by the triangle
      inequality in the joint space, (Delta, x + delta - x_j*) = (Delta, delta) + (0, x - x_j*) has
      norm < R' + d_j* = R_j*: the attack seen from x_j* lies inside j*'s joint L2 ball.

    Arguments are per input: the memory's action, raw and final radius, the raw budget G/2, the
    attack's whitened size (:func:`whitened_attack_size`), its test trigger size and joint L2 size.
    """
    relabelled, rho, r1 = _memory_parts(action, radius_raw, radius_final)
    b = _non_negative(budget, "budget").reshape(-1)
    w = _non_negative(whitened, "whitened attack size").reshape(-1)
    d = _non_negative(test_delta_l2, "test_delta_l2").reshape(-1)
    j = _non_negative(joint_l2, "joint_l2").reshape(-1)
    kept_rule = (w < rho * b) & (d < r1)
    return np.where(relabelled, j < r1, kept_rule)


def poison_count_after_memory(action, radius_raw, radius_final, budget, sigma_x, certificate_train_sigmas,
                              eps: float, eta: float) -> np.ndarray:
    """:func:`certified_poison_count` for the memory's final certificate (see :func:`covered_after_memory`).

    kept / trimmed: the count with budget rho * G/2, and -1 unless eps < R'. relabelled: the L2
    statement ``eps^2 + k * eta^2 < R'^2`` (the ellipsoid with unit sigmas and budget R').
    """
    relabelled, rho, r1 = _memory_parts(action, radius_raw, radius_final)
    b = _non_negative(budget, "budget").reshape(-1)
    sx = np.broadcast_to(_positive(sigma_x, "sigma_x"), b.shape)
    kept = certified_poison_count(rho * b, sx, certificate_train_sigmas, eps, eta)
    kept = np.where(float(eps) < r1, kept, NOT_CERTIFIED)
    n = np.asarray(certificate_train_sigmas).size
    l2 = certified_poison_count(r1, 1.0, np.ones(n), eps, eta)
    return np.where(relabelled, l2, kept).astype(np.int64)
