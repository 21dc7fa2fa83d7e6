"""Per-sample noise levels (config group ``sigma_optimiser``; docs/METHOD.md sections 2, 3 and 7).

Each option is one yaml and one class that owns its behaviour (:mod:`.base`): ``none``
(:mod:`.none`, no noise: the count-certified defences), ``fixed`` (:mod:`.fixed`, RAB), ``sga`` and
``sga_joint`` (:mod:`.sga`, Cert-SSB), ``released`` (:mod:`.released`, compatibility only),
``grid`` (:mod:`.grid`) and ``grid_ensembles`` (:mod:`.grid_ensembles`).

Also: :func:`optimise_sigmas` (the SGA loop), :func:`proxy_radius` (r(sigma), differentiable in
sigma; :func:`smoothed_probs` and :func:`radius_from_probs` are its two halves) and
:func:`sigma_stats` (summary statistics of a sigma array).
"""

from .base import SigmaOptimiserSettings, Sigmas
from .optimise import optimise_sigmas, sigma_trajectory
from .proxy import proxy_radius, radius_from_probs, smoothed_probs
from .stats import sigma_stats

__all__ = [
    "SigmaOptimiserSettings",
    "Sigmas",
    "optimise_sigmas",
    "proxy_radius",
    "radius_from_probs",
    "sigma_stats",
    "sigma_trajectory",
    "smoothed_probs",
]
