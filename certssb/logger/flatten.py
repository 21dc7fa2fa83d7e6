"""Flatten the summary into scalar metrics and long-format curve rows."""

from __future__ import annotations


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
    """Metrics, certified accuracy at each grid radius and ACR as flat scalar keys."""
    out = {f"metrics/{k}": v for k, v in flatten(summary.get("metrics", {})).items()}
    for split, curve in summary.get("curves", {}).items():
        for variant, values in curve["certified_accuracy"].items():
            for r, v in zip(curve["radii"], values):
                out[f"ca/{split}/{variant}@{r:g}"] = v
    out.update({f"timings/{k}": v for k, v in summary.get("timings", {}).items()})
    out["n_members"] = summary.get("n_members")
    return {k: v for k, v in out.items() if v is not None}


def curve_rows(summary: dict) -> list[list]:
    """Rows [split, variant, radius, certified_accuracy] for every curve point."""
    rows = []
    for split, curve in summary.get("curves", {}).items():
        for variant, values in curve["certified_accuracy"].items():
            for r, v in zip(curve["radii"], values):
                rows.append([split, variant, float(r), float(v)])
    return rows
