"""Mean and standard deviation over seeds of a report table (``certssb.tools.report``).

Runs that differ only in ``seed`` form one group; every other swept parameter that varies (for a
results sweep: ``method``, the option yaml naming the method) keeps groups apart. For each group:
``n_seeds``, the seeds, the family, and ``<metric>_mean`` / ``<metric>_std`` of the ACR, certified
accuracy at each radius (``ca@<r>``), against ``k`` poisoned samples (``pc@<k>``) and against any
``k`` changed samples (``ac@<k>``), clean accuracy, ASR, the realised attack certified (clean and
triggered), the median certified count, the models trained and the timings. The standard
deviation is the sample one (``ddof = 1``); it is NaN for a group with a single seed.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import pandas as pd

__all__ = ["aggregate_over_seeds", "mean_std_cell", "SEED_METRICS"]

# Per-run columns averaged besides the ca@ / pc@ curves (those missing from the table are skipped).
SEED_METRICS = ["acr", "accuracy", "clean_accuracy", "asr", "covered_exact", "realised_attack_certified_clean",
                "realised_attack_certified_triggered", "any_count_median", "n_members", "sigma_s", "train_s",
                "total_s"]


def _curve_columns(df: pd.DataFrame, prefix: str) -> list[str]:
    return [c for c in df.columns if c.startswith(prefix)]


def aggregate_over_seeds(df: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """One row per combination of ``keys`` (seed excluded): mean and std over its runs.

    ``df`` is a :func:`certssb.tools.report.collect_runs` table; ``keys`` the parameters that tell
    groups apart (the order of first appearance in ``df`` is kept). Columns: ``keys``, ``method``
    (the summaries' method names, unless ``method`` is itself a swept key), ``family``,
    ``n_seeds``, ``seeds``, then ``<m>_mean`` and ``<m>_std`` for ``acr``, every ``ca@<r>``, every
    ``pc@<k>``, every ``ac@<k>`` and the other :data:`SEED_METRICS`.
    """
    keys = [k for k in keys if k != "seed" and k in df.columns]
    curves = _curve_columns(df, "ca@") + _curve_columns(df, "pc@") + _curve_columns(df, "ac@")
    metrics = [m for m in ["acr"] + curves + SEED_METRICS[1:] if m in df.columns]
    metrics = list(dict.fromkeys(metrics))
    rows: list[dict[str, Any]] = []
    if keys:
        grouped = df.groupby([df[k].astype(str) for k in keys], sort=False, dropna=False)
        groups = [g for _, g in grouped]
    else:
        groups = [df] if len(df) else []
    for g in groups:
        row: dict[str, Any] = {k: g[k].iloc[0] for k in keys}
        for name in ("method", "family"):  # the summaries' names (a swept ``method`` is a key)
            if name not in keys:
                row[name] = ",".join(sorted({str(m) for m in g[name].dropna()})) if name in g else ""
        row["n_seeds"] = int(len(g))
        row["seeds"] = ",".join(str(s) for s in g["seed"].tolist()) if "seed" in g else ""
        for m in metrics:
            values = pd.to_numeric(g[m], errors="coerce")
            row[f"{m}_mean"] = float(values.mean()) if values.notna().any() else math.nan
            row[f"{m}_std"] = float(values.std(ddof=1)) if values.notna().sum() > 1 else math.nan
        rows.append(row)
    names = [n for n in ("method", "family") if n not in keys]
    columns = keys + names + ["n_seeds", "seeds"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std")]
    return pd.DataFrame(rows, columns=columns)


def mean_std_cell(mean: Any, std: Any, digits: int = 3) -> str:
    """``0.512 ± 0.013`` (``0.512`` when the std is NaN, empty when the mean is; a whole number
    that is the same over every seed, such as a model count, as itself: ``200``)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return ""
    if std is not None and std == 0 and float(mean).is_integer() and abs(mean) > 1:
        return f"{int(mean)}"
    text = f"{mean:.{digits}f}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        text += f" ± {std:.{digits}f}"
    return text
