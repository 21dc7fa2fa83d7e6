"""Certified radii from the gap G = Phi^-1(pA_lower) - Phi^-1(pB_upper) (METHOD.md sec. 3).

The joint noise is N(0, diag(sigma_x^2 I, sigma_1^2 I, ..., sigma_n^2 I)); the exact condition is
the ellipsoid sqrt(||delta||^2/sigma_x^2 + sum_i ||delta_i||^2/sigma_i^2) < G/2. Variants:
- ``paper``:  sigma_x * G / 2 (assumes every training sigma_i >= sigma_x);
- ``joint``:  min(sigma_x, min_i sigma_i) * G / 2 (a sound L2 radius for the joint perturbation);
- ``budget``: G / 2 (the whitened budget).
With one fixed sigma everywhere (RAB) all of ``paper`` and ``joint`` equal sigma * G / 2.
"""

from __future__ import annotations

import numpy as np

from certssb.errors import ConfigError

__all__ = ["RADIUS_VARIANTS", "radius_variants"]

RADIUS_VARIANTS = ("paper", "joint", "budget")


def _check_sigma(value, name: str) -> np.ndarray:
    s = np.asarray(value, dtype=np.float64)
    if s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0.0):
        raise ConfigError(f"{name} must be finite and > 0 everywhere")
    return s


def radius_variants(gap, sigma_x, certificate_train_sigmas) -> dict[str, np.ndarray]:
    """Radii ``paper``, ``joint``, ``budget`` (float64, 0 where gap == 0).

    gap: [m] non-negative gaps; sigma_x: scalar or [m] test-time sigmas;
    certificate_train_sigmas: the training sigmas the certificate may assume, an array (its
    minimum enters ``joint``) or that minimum as a scalar.
    """
    g = np.asarray(gap, dtype=np.float64)
    if not np.all(np.isfinite(g)) or np.any(g < 0.0):
        raise ConfigError("gap must be finite and >= 0 (0 means abstain)")
    sx = _check_sigma(sigma_x, "sigma_x")
    st = _check_sigma(certificate_train_sigmas, "certificate_train_sigmas")
    if st.ndim != 0:
        st = np.asarray(st.min())
    paper = sx * g / 2.0
    joint = np.minimum(sx, st) * g / 2.0
    budget = g / 2.0
    shape = np.broadcast_shapes(g.shape, sx.shape)
    return {
        "paper": np.broadcast_to(paper, shape).astype(np.float64),
        "joint": np.broadcast_to(joint, shape).astype(np.float64),
        "budget": np.broadcast_to(budget, shape).astype(np.float64),
    }
