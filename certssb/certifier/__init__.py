"""Certification: confidence bounds, certified radii, storage-update memory, metrics, and the
exact-ellipsoid certificates in the attacker's terms (realised-attack coverage, poisoned-sample count),
and the count-certified defences of METHOD.md 8.2 (DPA, Finite Aggregation, run-off election, bagging).

Pure numpy/scipy (no torch), so it can be audited and tested on its own.
"""

from .bagging import BaggingCertificate, bag_indices, bagging_certificate, bagging_modifications
from .bounds import (
    clopper_pearson_lower,
    clopper_pearson_upper,
    hoeffding_lower,
    hoeffding_margin,
    hoeffding_upper,
)
from .dpa import dpa_certificate
from .ellipsoid import (
    NOT_CERTIFIED,
    certified_poison_count,
    covered_after_memory,
    poison_certified_accuracy,
    poison_count_after_memory,
    poison_count_grid,
    whitened_attack_size,
)
from .finite_aggregation import fa_bucket_models, fa_certificate, fa_model_buckets
from .grid import GridSelection, GridVotes, certify_grid
from .memory import CentreStore, CertifiedMemory, MemoryResult, processing_order, storage_update
from .metrics import certified_accuracy_curve, covered_fraction, summary_metrics
from .partition import modifications_from_parts, partition_hash, partition_index
from .radius import RADIUS_VARIANTS, radius_variants
from .ranks import predictions_from_ranks, ranks_from_logits, votes_from_predictions, votes_from_ranks
from .realised_attack import PoisonSizes, RealisedAttack, resolve_poison_sizes
from .runoff import roe_dpa_certificate, roe_fa_certificate, roe_prediction
from .scores import BoundOptions, ScoreBounds, certify_scores, expected_gap, per_bound_alpha

__all__ = [
    "BoundOptions",
    "BaggingCertificate",
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
    "bag_indices",
    "bagging_certificate",
    "bagging_modifications",
    "certified_accuracy_curve",
    "certified_poison_count",
    "certify_grid",
    "certify_scores",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "covered_after_memory",
    "covered_fraction",
    "dpa_certificate",
    "expected_gap",
    "fa_bucket_models",
    "fa_certificate",
    "fa_model_buckets",
    "hoeffding_lower",
    "hoeffding_margin",
    "hoeffding_upper",
    "modifications_from_parts",
    "partition_hash",
    "partition_index",
    "per_bound_alpha",
    "poison_certified_accuracy",
    "poison_count_after_memory",
    "poison_count_grid",
    "predictions_from_ranks",
    "processing_order",
    "radius_variants",
    "ranks_from_logits",
    "resolve_poison_sizes",
    "roe_dpa_certificate",
    "roe_fa_certificate",
    "roe_prediction",
    "storage_update",
    "summary_metrics",
    "votes_from_predictions",
    "votes_from_ranks",
    "whitened_attack_size",
]
