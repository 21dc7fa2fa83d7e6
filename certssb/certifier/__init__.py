"""Certification: confidence bounds, certified radii, storage-update memory, metrics, and the
exact-ellipsoid certificates in the attacker's terms (realised-attack coverage, poisoned-sample count).

Pure numpy/scipy (no torch), so it can be audited and tested on its own.
"""

from .bounds import (
    clopper_pearson_lower,
    clopper_pearson_upper,
    hoeffding_lower,
    hoeffding_margin,
    hoeffding_upper,
)
from .ellipsoid import (
    NOT_CERTIFIED,
    certified_poison_count,
    covered_after_memory,
    poison_certified_accuracy,
    poison_count_after_memory,
    poison_count_grid,
    whitened_attack_size,
)
from .grid import GridSelection, GridVotes, certify_grid, certify_grid_cfg
from .memory import CentreStore, CertifiedMemory, MemoryResult, processing_order, storage_update
from .metrics import certified_accuracy_curve, covered_fraction, summary_metrics
from .radius import RADIUS_VARIANTS, radius_variants
from .realised_attack import PoisonSizes, RealisedAttack, resolve_poison_sizes
from .scores import ScoreBounds, certify_scores, certify_scores_cfg, expected_gap, per_bound_alpha

__all__ = [
    "CentreStore",
    "CertifiedMemory",
    "GridSelection",
    "GridVotes",
    "MemoryResult",
    "NOT_CERTIFIED",
    "PoisonSizes",
    "RealisedAttack",
    "RADIUS_VARIANTS",
    "ScoreBounds",
    "certified_accuracy_curve",
    "certified_poison_count",
    "certify_grid",
    "certify_grid_cfg",
    "certify_scores",
    "certify_scores_cfg",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "covered_after_memory",
    "covered_fraction",
    "expected_gap",
    "hoeffding_lower",
    "hoeffding_margin",
    "hoeffding_upper",
    "per_bound_alpha",
    "poison_certified_accuracy",
    "poison_count_after_memory",
    "poison_count_grid",
    "processing_order",
    "radius_variants",
    "resolve_poison_sizes",
    "storage_update",
    "summary_metrics",
    "whitened_attack_size",
]
