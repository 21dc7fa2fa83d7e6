"""Flatten the summary into scalar metrics and long-format curve rows.

Metric names use only letters, digits, ``_`` and ``/`` (what W&B's UI sorts and filters by;
``/`` makes panel sections): certified accuracy at radius 0.5 of the clean set's joint variant is
``ca/clean/joint/r0_5`` (``.`` -> ``_``), any other character becomes ``_``.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_/]")


def metric_name(name: str) -> str:
    """``name`` with every character other than a letter, digit, ``_`` or ``/`` replaced by ``_``."""
    return _UNSAFE.sub("_", str(name))


def radius_key(radius: float) -> str:
    """``0.5`` -> ``r0_5``, ``1`` -> ``r1``, ``1e-05`` -> ``r1e_05`` (``%g``, then :func:`metric_name`)."""
    return metric_name(f"r{float(radius):g}")


def flatten(d: dict, prefix: str = "", sep: str = "/") -> dict:
    """Nested dict -> {"a/b/c": scalar}; lists and None are dropped."""
    out = {}
    for key, value in d.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, name, sep))
        elif isinstance(value, (int, float, str, bool)) and not isinstance(value, type(None)):
            out[name] = value
    return out


def summary_scalars(summary: dict) -> dict:
    """Metrics, certified accuracy at each grid radius and at each poisoned-sample count, and the
    plain statements, as flat keys.

    ``metrics/<path>`` (``metrics/clean/acr/joint``; ``metrics/<split>/acr`` is the sound joint ACR),
    ``ca/<split>/<variant>/r<radius>`` (``ca/clean/joint/r0_5``),
    ``ca_poison_labels_unchanged/<split>/<variant>/k<k>`` (the Gaussian family's poisoned-sample
    count: features moved, labels unchanged) with ``poison_size/<split>/eta`` and ``.../eps``,
    ``ca_any/<split>/k<k>`` (any k training samples changed, labels included: every family),
    ``statement/<split>`` (text), ``timings/<name>``, ``n_members``; names pass through
    :func:`metric_name`.
    """
    out = {f"metrics/{k}": v for k, v in flatten(summary.get("metrics", {})).items()}
    for split, curve in summary.get("curves", {}).items():
        for variant, values in (curve.get("certified_accuracy") or {}).items():
            for r, v in zip(curve["radii"], values):
                out[f"ca/{split}/{variant}/{radius_key(r)}"] = v
        pc = curve.get("poison_count")
        if pc:
            out[f"poison_size/{split}/eta"], out[f"poison_size/{split}/eps"] = pc["eta"], pc["eps"]
            for variant, values in pc["certified_accuracy"].items():
                for k, v in zip(pc["counts"], values):
                    out[f"ca_poison_labels_unchanged/{split}/{variant}/k{int(k)}"] = v
        ac = curve.get("any_count")
        if ac:
            for k, v in zip(ac["counts"], ac["certified_accuracy"]):
                out[f"ca_any/{split}/k{int(k)}"] = v
    for split, text in (summary.get("certified_statement") or {}).items():
        out[f"statement/{split}"] = text
    out.update({f"timings/{k}": v for k, v in summary.get("timings", {}).items()})
    out["n_members"] = summary.get("n_members")
    return {metric_name(k): v for k, v in out.items() if v is not None}


def poison_rows(summary: dict) -> list[list]:
    """Rows [split, variant, k, certified_accuracy] of every poisoned-sample-count curve."""
    rows = []
    for split, curve in summary.get("curves", {}).items():
        pc = curve.get("poison_count")
        for variant, values in (pc or {}).get("certified_accuracy", {}).items():
            for k, v in zip(pc["counts"], values):
                rows.append([split, variant, int(k), float(v)])
    return rows


def curve_rows(summary: dict) -> list[list]:
    """Rows [split, variant, radius, certified_accuracy] for every curve point."""
    rows = []
    for split, curve in summary.get("curves", {}).items():
        for variant, values in (curve.get("certified_accuracy") or {}).items():
            for r, v in zip(curve["radii"], values):
                rows.append([split, variant, float(r), float(v)])
    return rows
