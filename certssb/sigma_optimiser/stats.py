"""Summary statistics of per-sample sigmas for summary.json."""

from __future__ import annotations

import numpy as np
import torch

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def sigma_stats(sigmas, sigma_min: float | None = None, sigma_max: float | None = None) -> dict:
    """``n, min, max, mean, std, median, q05, q25, q50, q75, q95`` of ``sigmas`` as plain floats.

    With ``sigma_min`` / ``sigma_max`` given, also ``frac_at_min`` / ``frac_at_max``: the share of
    samples at (within 1e-6 of) each clamp bound. Empty input gives ``n = 0`` and NaNs.
    """
    if torch.is_tensor(sigmas):
        sigmas = sigmas.detach().cpu().double().numpy()
    a = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    out: dict = {"n": int(a.size)}
    if a.size == 0:
        nan = float("nan")
        out.update({k: nan for k in ("min", "max", "mean", "std", "median")})
        out.update({f"q{int(round(q * 100)):02d}": nan for q in QUANTILES})
    else:
        out.update(
            {
                "min": float(a.min()),
                "max": float(a.max()),
                "mean": float(a.mean()),
                "std": float(a.std()),
                "median": float(np.median(a)),
            }
        )
        out.update({f"q{int(round(q * 100)):02d}": float(np.quantile(a, q)) for q in QUANTILES})
    if sigma_min is not None:
        out["frac_at_min"] = float(np.mean(a <= sigma_min + 1e-6)) if a.size else float("nan")
    if sigma_max is not None:
        out["frac_at_max"] = float(np.mean(a >= sigma_max - 1e-6)) if a.size else float("nan")
    return out
