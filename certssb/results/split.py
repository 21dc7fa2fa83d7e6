"""What every family's certificates of a test set become: a :class:`SplitResult`, and the readings
that put every family on one axis (docs/METHOD.md section 8.3).

- ``certified_any_count``: the largest k such that ANY k training samples changed arbitrarily
  (features and labels) cannot change the prediction; -1 where nothing is certified (an
  abstention); 0 for a non-abstained Gaussian certificate (it certifies no arbitrary change).
- ``realised_attack_certified``: the input is predicted correctly and the certificate covers the
  attack as it was run: a count certificate of at least the number of training samples the attack
  changed, or (Gaussian family) an attack that kept every label and whose own perturbations lie
  inside the exact ellipsoid. An attack that relabelled is never covered by a Gaussian certificate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from certssb.certifier import poison_certified_accuracy, poison_count_grid

#: the sound, deployed variant of the Gaussian family is read with the memory when it ran


@dataclass
class SplitResult:
    """Certificates of one test set: a per-input table, metrics and curves."""

    name: str
    table: pd.DataFrame
    metrics: dict
    curves: dict
    memory: dict = field(default_factory=dict)
    alpha_per_bound: float = float("nan")
    votes: dict = field(default_factory=dict)  # count family: integer arrays for votes.npz


def any_count_curve(correct, counts, n_train: int) -> dict:
    """``{"counts": k grid, "certified_accuracy": CA(k)}`` with CA(k) = mean(correct and
    certified_any_count >= k) on the 0, 1, 2, 5, 10, ... grid up to the training-set size."""
    grid = poison_count_grid(n_train)
    return {"counts": grid, "certified_accuracy": poison_certified_accuracy(correct, counts, grid).tolist()}


def median_count(correct, counts) -> int | None:
    """Lower median of a certified count over the correct inputs certified at all (count >= 0)."""
    sel = np.asarray(counts)[np.asarray(correct, dtype=bool) & (np.asarray(counts) >= 0)]
    return int(np.sort(sel)[(len(sel) - 1) // 2]) if len(sel) else None


def add_attack_as_run(result: SplitResult, correct, any_count, certified, n_train: int, n_changed: int) -> None:
    """The one-axis readings of a set (both families): ``certified_any_count`` and
    ``realised_attack_certified`` columns, ``curves.any_count``, and the metrics
    ``realised_attack_certified`` (share of inputs), ``any_count_median`` and
    ``attack_changed_samples``."""
    result.table["certified_any_count"] = np.asarray(any_count, dtype=np.int64)
    result.table["realised_attack_certified"] = np.asarray(certified, dtype=bool)
    result.curves["any_count"] = any_count_curve(correct, any_count, n_train)
    result.metrics["realised_attack_certified"] = float(np.mean(certified)) if len(certified) else None
    result.metrics["any_count_median"] = median_count(correct, any_count)
    certified = np.asarray(any_count)[np.asarray(correct, dtype=bool)]
    result.metrics["max_any_count"] = int(certified.max()) if certified.size else -1
    result.metrics["attack_changed_samples"] = int(n_changed)


def coverage_entries(attack: RealisedAttack, features, ball, suffix: str = "") -> dict:
    """``covered_fraction`` entries of the Gaussian family: the attack as run (0 when it relabelled) and, for an attack that
    relabelled, what the ellipsoid certifies of its trigger features alone (labels as poisoned)."""
    exact = float(np.mean(features))
    if not attack.relabels:
        return {f"exact{suffix}": exact, f"joint_l2_ball{suffix}": ball}
    return {f"exact{suffix}": 0.0, f"joint_l2_ball{suffix}": 0.0 if ball is not None else None,
            f"trigger_features_only{suffix}": {"exact": exact, "joint_l2_ball": ball}}
