"""Certification: confidence bounds, certified radii, storage-update memory, metrics.

Pure numpy/scipy (no torch), so it can be audited and tested on its own.
"""

from .bounds import (
    clopper_pearson_lower,
    clopper_pearson_upper,
    hoeffding_lower,
    hoeffding_margin,
    hoeffding_upper,
)
from .grid import GridSelection, GridVotes, certify_grid, certify_grid_cfg
from .memory import CertifiedMemory, MemoryResult, processing_order, storage_update
from .metrics import certified_accuracy_curve, covered_fraction, summary_metrics
from .radius import RADIUS_VARIANTS, radius_variants
from .scores import ScoreBounds, certify_scores, certify_scores_cfg, expected_gap, per_bound_alpha

__all__ = [
    "CertifiedMemory",
    "GridSelection",
    "GridVotes",
    "MemoryResult",
    "RADIUS_VARIANTS",
    "ScoreBounds",
    "certified_accuracy_curve",
    "certify_grid",
    "certify_grid_cfg",
    "certify_scores",
    "certify_scores_cfg",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "covered_fraction",
    "expected_gap",
    "hoeffding_lower",
    "hoeffding_margin",
    "hoeffding_upper",
    "per_bound_alpha",
    "processing_order",
    "radius_variants",
    "storage_update",
    "summary_metrics",
]
