"""The report's table: one row per complete run from the records that :mod:`.local_runs` and
:mod:`.wandb_runs` read (``{run_dir, overrides, summary, reason, status}`` plus an optional
``config``), the runs that are not complete in a list beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from certssb.tools.one_axis import any_count_curve, attack_changed, one_axis_row

from .overrides import config_value, read_yaml

__all__ = ["BASE_COLUMNS", "METRIC_COLUMNS", "build_table"]

BASE_COLUMNS = ["run_dir", "status", "method", "seed", "n_members", "family"]
METRIC_COLUMNS = [
    "accuracy",
    "certified_ratio",
    "acr",
    "covered_exact",
    "clean_accuracy",
    "asr",
    "undefended_clean_accuracy",
    "undefended_asr",
    "attack_joint_l2",
    "realised_attack_certified_clean",
    "realised_attack_certified_triggered",
    "any_count_median",
    "sigma_s",
    "train_s",
    "total_s",
]


def _curve(summary: dict, split: str, variant: str) -> tuple[list[float], list[float]] | None:
    curve = (summary.get("curves") or {}).get(split) or {}
    values = (curve.get("certified_accuracy") or {}).get(variant)
    radii = curve.get("radii")
    if values is None or radii is None or len(values) != len(radii):
        return None
    return [float(r) for r in radii], [float("nan") if v is None else float(v) for v in values]


def _poison_curve(summary: dict, split: str, variant: str) -> tuple[list[int], list[float]] | None:
    """Certified accuracy against k poisoned samples (``curves.<split>.poison_count``) for the
    sound variants (``joint``, ``joint_memory``); None for the others or when absent."""
    pc = ((summary.get("curves") or {}).get(split) or {}).get("poison_count") or {}
    counts = pc.get("counts")
    values = (pc.get("certified_accuracy") or {}).get(variant)
    if counts is None or values is None or len(values) != len(counts):
        return None
    return [int(k) for k in counts], [float("nan") if v is None else float(v) for v in values]


def _acr(split_metrics: dict, variant: str) -> Any:
    """ACR of ``variant``: ``acr`` is the sound (joint) one, the others are in ``acr_by_variant``
    (older summaries held a dict of variants under ``acr``)."""
    acr = split_metrics.get("acr")
    if isinstance(acr, dict):
        return acr.get(variant)
    by_variant = split_metrics.get("acr_by_variant")
    if isinstance(by_variant, dict) and variant in by_variant:
        return by_variant[variant]
    if isinstance(acr, (int, float)) and variant == "joint":
        return acr
    return None


def _covered_exact(split_metrics: dict) -> Any:
    """Share of inputs whose sound certificate covers the realised attack (exact ellipsoid test;
    the storage-update memory's final certificate when the memory ran)."""
    covered = split_metrics.get("covered_fraction")
    if not isinstance(covered, dict):
        return None
    return covered.get("exact_memory", covered.get("exact"))


def _metrics(summary: dict, split: str, variant: str) -> dict:
    metrics = summary.get("metrics") or {}
    split_metrics = metrics.get(split) or {}
    timings = summary.get("timings") or {}
    one_axis = one_axis_row(summary, split)
    return {
        "accuracy": split_metrics.get("accuracy"),
        "certified_ratio": split_metrics.get("certified_ratio"),
        "acr": _acr(split_metrics, variant),
        "covered_exact": _covered_exact(split_metrics),
        "clean_accuracy": metrics.get("clean_accuracy"),
        "asr": metrics.get("asr"),
        "undefended_clean_accuracy": metrics.get("undefended_clean_accuracy"),
        "undefended_asr": metrics.get("undefended_asr"),
        "attack_joint_l2": metrics.get("attack_joint_l2"),
        **{k: one_axis[k] for k in ("realised_attack_certified_clean", "realised_attack_certified_triggered",
                                    "any_count_median")},
        "sigma_s": timings.get("sigma_s"),
        "train_s": timings.get("train_s"),
        "total_s": timings.get("total_s"),
    }


def _swept_params(records: list[dict]) -> list[str]:
    params: list[str] = []
    for rec in records:
        if rec.get("orphan"):
            continue
        for key in rec["overrides"]:
            if key not in params:
                params.append(key)
    return params


def _param_values(rec: dict, params: list[str]) -> dict[str, Any]:
    """Each swept parameter's value: the run's override, else its composed config's plain value."""
    values: dict[str, Any] = {}
    config = None
    for key in params:
        if key in rec["overrides"]:
            values[key] = rec["overrides"][key]
            continue
        if config is None:
            config = rec.get("config")
            if config is None:
                config = read_yaml(Path(rec["run_dir"]) / ".hydra" / "config.yaml") or {}
        values[key] = config_value(config, key)
    return values


def _curve_cells(summary: dict, split: str, variant: str, found: dict) -> dict:
    """``ca@<r>``, ``pc@<k>`` and ``ac@<k>`` cells of one run; every grid point seen is added to
    ``found`` (``radii``, ``counts``, ``any``) and the radius curve under ``found["curve"]``."""
    cells: dict[str, Any] = {}
    readings = (("radii", "ca@{:g}", _curve(summary, split, variant)),
                ("counts", "pc@{:d}", _poison_curve(summary, split, variant)),
                ("any", "ac@{:d}", any_count_curve(summary, split)))
    for name, label, curve in readings:
        if curve is None:
            continue
        if name == "radii":
            found["curve"] = curve
        for x, v in zip(*curve):
            found[name].add(x)
            cells[label.format(x)] = v
    return cells


def build_table(records: list[dict], split: str, variant: str) -> tuple[pd.DataFrame, list[dict]]:
    """Rows of complete runs and the missing list. ``df.attrs``: ``params`` (the swept keys),
    ``radii``, ``counts``, ``any_counts`` (the grids), ``curves`` (run -> radius curve),
    ``any_curves`` (run -> k-axis curve), ``changed`` (run -> samples the attack changed),
    ``split``, ``variant``."""
    params = _swept_params(records)
    rows: list[dict] = []
    missing: list[dict] = []
    curves: dict[str, tuple[list[float], list[float]]] = {}
    any_curves: dict[str, tuple[list[int], list[float]]] = {}
    changed: dict[str, int | None] = {}
    grids: dict[str, set] = {"radii": set(), "counts": set(), "any": set()}
    for rec in records:
        run_dir, summary = str(rec["run_dir"]), rec["summary"]
        if rec.get("orphan"):
            missing.append({"run_dir": run_dir, "status": rec["status"], "reason": rec["reason"]})
            continue
        values = _param_values(rec, params)
        if rec["reason"] is not None:
            missing.append({"run_dir": run_dir, "status": rec["status"], "reason": rec["reason"], **values})
            continue
        found = dict(grids)
        row = {"run_dir": run_dir, "status": rec["status"], "method": summary.get("method"),
               "seed": summary.get("seed"), "n_members": summary.get("n_members"),
               "family": one_axis_row(summary)["family"], **values}
        row.update(_curve_cells(summary, split, variant, found))
        if "curve" in found:
            curves[run_dir] = found["curve"]
        if any_count_curve(summary, split) is not None:
            any_curves[run_dir] = any_count_curve(summary, split)
        changed[run_dir] = attack_changed(summary)
        row.update(_metrics(summary, split, variant))
        rows.append(row)
    frame = _frame(rows, params, grids, split, variant, curves=curves, any_curves=any_curves, changed=changed)
    return frame, missing


def _frame(rows: list[dict], params: list[str], grids: dict, split: str, variant: str, **attrs) -> pd.DataFrame:
    radii, counts, anys = sorted(grids["radii"]), sorted(grids["counts"]), sorted(grids["any"])
    base = [c for c in BASE_COLUMNS if c not in params]
    columns = (base + params + [f"ca@{r:g}" for r in radii] + [f"pc@{k:d}" for k in counts]
               + [f"ac@{k:d}" for k in anys] + METRIC_COLUMNS)
    df = pd.DataFrame(rows, columns=columns)
    for col in ("seed", "n_members"):
        if col not in params and len(df) and df[col].notna().all():
            df[col] = df[col].astype("int64")
    df.attrs.update(params=params, radii=radii, counts=counts, any_counts=anys, split=split, variant=variant, **attrs)
    return df
