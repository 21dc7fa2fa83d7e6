"""What a run's ``summary.json`` says on the one axis every family shares (docs/METHOD.md 8.3),
read the same way by ``tools.report`` and ``tools.compare``.

- ``family``: ``gaussian`` (an L2 radius of feature changes, labels held) or ``count`` (any k
  training samples changed, labels included); summaries written before the count family hold no
  ``family`` and are Gaussian.
- ``realised_attack_certified_<split>``: the share of the split's inputs predicted correctly and
  certified against the attack as it was run (``metrics.<split>.realised_attack_certified``).
- ``any_count_median``: the median ``certified_any_count`` over the correct, certified inputs.
- ``n_members`` (the models trained: N members, parts or bags) and ``train_s`` (their training
  time, ``timings.train_s``).
- the curve ``curves.<split>.any_count``: certified accuracy against any k changed training samples.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ONE_AXIS_COLUMNS", "any_count_curve", "attack_changed", "family", "one_axis_row"]

#: the columns of :func:`one_axis_row`, in table order
ONE_AXIS_COLUMNS = ["family", "n_members", "clean_accuracy", "realised_attack_certified_clean",
                    "realised_attack_certified_triggered", "any_count_median", "train_s"]


def family(summary: dict) -> str:
    """``gaussian`` or ``count`` (older summaries, without the key, are Gaussian)."""
    return str(summary.get("family") or "gaussian")


def _split_metric(summary: dict, split: str, key: str) -> Any:
    return ((summary.get("metrics") or {}).get(split) or {}).get(key)


def attack_changed(summary: dict) -> int | None:
    """How many training samples the attack changed (poisoned and noise-mode samples), if recorded."""
    for split in ("clean", "triggered", "triggered_all"):
        value = _split_metric(summary, split, "attack_changed_samples")
        if value is not None:
            return int(value)
    return None


def one_axis_row(summary: dict, split: str = "clean") -> dict:
    """The :data:`ONE_AXIS_COLUMNS` of one run (None where the summary lacks a value);
    ``any_count_median`` is the one of ``split``."""
    metrics = summary.get("metrics") or {}
    return {
        "family": family(summary),
        "n_members": summary.get("n_members"),
        "clean_accuracy": metrics.get("clean_accuracy", _split_metric(summary, "clean", "accuracy")),
        "realised_attack_certified_clean": _split_metric(summary, "clean", "realised_attack_certified"),
        "realised_attack_certified_triggered": _split_metric(summary, "triggered", "realised_attack_certified"),
        "any_count_median": _split_metric(summary, split, "any_count_median"),
        "train_s": (summary.get("timings") or {}).get("train_s"),
    }


def any_count_curve(summary: dict, split: str) -> tuple[list[int], list[float]] | None:
    """``(k grid, certified accuracy)`` of ``curves.<split>.any_count``; None when absent."""
    curve = ((summary.get("curves") or {}).get(split) or {}).get("any_count") or {}
    counts, values = curve.get("counts"), curve.get("certified_accuracy")
    if counts is None or values is None or len(counts) != len(values):
        return None
    return [int(k) for k in counts], [float("nan") if v is None else float(v) for v in values]
