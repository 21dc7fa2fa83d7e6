"""Per-sample noise levels (config group ``sigma_optimiser``; docs/METHOD.md section 3 step 1).

Public API:

- :func:`optimise_sigmas` (cfg, model, x, seed, purpose, device=None, progress=True) -> float32 [n]
  with ``cfg.name`` ``fixed`` | ``sga`` | ``released`` | ``grid`` (the last a compatibility option that
  reproduces the released code's model-ignoring update, never the default).
- :func:`proxy_radius` (model, x, sigma, eps, clip) -> r(sigma) [b], differentiable in sigma;
  :func:`smoothed_probs` and :func:`radius_from_probs` are its two halves.
- :func:`sigma_stats` (sigmas) -> dict of plain floats for the summary.
- :func:`training_sigmas` / :func:`certificate_train_sigmas` (cfg, sigmas): what the members
  train with (floored) and what the certificate may assume (see :mod:`.design`).
- :func:`parse_sigma_config` (cfg) -> :class:`SigmaSettings`, raising ``ConfigError`` if invalid.
"""

from . import design
from .config import RULES, SigmaSettings, parse_sigma_config
from .design import certificate_train_sigmas, training_sigmas
from .optimise import optimise_sigmas
from .proxy import proxy_radius, radius_from_probs, smoothed_probs
from .stats import sigma_stats

__all__ = [
    "RULES",
    "certificate_train_sigmas",
    "design",
    "training_sigmas",
    "SigmaSettings",
    "optimise_sigmas",
    "parse_sigma_config",
    "proxy_radius",
    "radius_from_probs",
    "sigma_stats",
    "smoothed_probs",
]
