"""Evaluation metrics over certified predictions (METHOD.md section 4).

A radius of 0 means "not certified" (abstained or trimmed to nothing). All scalars are plain
Python floats (or None) so they serialise to JSON.
"""

from __future__ import annotations

import numpy as np

from certssb.errors import ConfigError

__all__ = ["certified_accuracy_curve", "covered_fraction", "summary_metrics"]


def _as_inputs(correct, radius) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(correct).astype(bool).reshape(-1)
    r = np.asarray(radius, dtype=np.float64).reshape(-1)
    if c.shape != r.shape:
        raise ConfigError(f"correct and radius differ in length: {c.shape[0]} vs {r.shape[0]}")
    if c.size == 0:
        raise ConfigError("no inputs to evaluate (empty correct/radius arrays)")
    if not np.all(np.isfinite(r)) or np.any(r < 0.0):
        raise ConfigError("certified radii must be finite and >= 0")
    return c, r


def certified_accuracy_curve(correct, radius, radii_grid) -> np.ndarray:
    """CA(r) = mean(correct and radius > r) for each r of the ascending, non-negative grid."""
    c, r = _as_inputs(correct, radius)
    grid = np.asarray(radii_grid, dtype=np.float64).reshape(-1)
    if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid < 0.0):
        raise ConfigError("radius grid must be non-empty, finite and >= 0")
    if np.any(np.diff(grid) < 0.0):
        raise ConfigError("radius grid must be sorted ascending")
    hits = c[None, :] & (r[None, :] > grid[:, None])
    return hits.mean(axis=1).astype(np.float64)


def summary_metrics(correct, radius, abstain) -> dict:
    """accuracy, certified_ratio, conditional_accuracy (None if nothing certified), acr,
    abstain_rate. ``correct`` is the smoothed prediction's correctness, abstentions included."""
    c, r = _as_inputs(correct, radius)
    a = np.asarray(abstain).astype(bool).reshape(-1)
    if a.shape != c.shape:
        raise ConfigError(f"abstain has {a.shape[0]} entries, expected {c.shape[0]}")
    certified = r > 0.0
    n_cert = int(certified.sum())
    return {
        "accuracy": float(c.mean()),
        "certified_ratio": float(certified.mean()),
        "conditional_accuracy": float(c[certified].mean()) if n_cert else None,
        "acr": float(np.mean(r * c)),
        "abstain_rate": float(a.mean()),
    }


def covered_fraction(radius, joint_l2, mask=None) -> float | None:
    """Fraction of inputs (those where ``mask`` is True, if given) whose certified radius is
    strictly larger than the attack's joint L2 size (scalar or per input); None if none selected."""
    r = np.asarray(radius, dtype=np.float64).reshape(-1)
    j = np.asarray(joint_l2, dtype=np.float64)
    if j.ndim != 0 and j.reshape(-1).shape != r.shape:
        raise ConfigError(f"joint_l2 must be a scalar or have {r.shape[0]} entries, got {j.size}")
    j = np.broadcast_to(j.reshape(-1) if j.ndim else j, r.shape)
    if not np.all(np.isfinite(r)) or np.any(r < 0.0):
        raise ConfigError("certified radii must be finite and >= 0")
    if not np.all(np.isfinite(j)) or np.any(j < 0.0):
        raise ConfigError("joint L2 sizes must be finite and >= 0")
    sel = np.ones(r.shape, dtype=bool) if mask is None else np.asarray(mask).astype(bool).reshape(-1)
    if sel.shape != r.shape:
        raise ConfigError(f"mask has {sel.shape[0]} entries, expected {r.shape[0]}")
    if not sel.any():
        return None
    return float(np.mean(r[sel] > j[sel]))
