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
    """Metrics (``metrics/<split>/acr`` is the sound joint ACR), certified accuracy at each grid
    radius, at each poisoned-sample count (``ca_poison/<split>/<variant>@k<k>``, with ``eta`` and
    ``eps``) and the plain statements (``statement/<split>``) as flat keys."""
    out = {f"metrics/{k}": v for k, v in flatten(summary.get("metrics", {})).items()}
    for split, curve in summary.get("curves", {}).items():
        for variant, values in curve["certified_accuracy"].items():
            for r, v in zip(curve["radii"], values):
                out[f"ca/{split}/{variant}@{r:g}"] = v
        pc = curve.get("poison_count")
        if pc:
            out[f"poison_size/{split}/eta"], out[f"poison_size/{split}/eps"] = pc["eta"], pc["eps"]
            for variant, values in pc["certified_accuracy"].items():
                for k, v in zip(pc["counts"], values):
                    out[f"ca_poison/{split}/{variant}@k{k}"] = v
    for split, text in (summary.get("certified_statement") or {}).items():
        out[f"statement/{split}"] = text
    out.update({f"timings/{k}": v for k, v in summary.get("timings", {}).items()})
    out["n_members"] = summary.get("n_members")
    return {k: v for k, v in out.items() if v is not None}


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
        for variant, values in curve["certified_accuracy"].items():
            for r, v in zip(curve["radii"], values):
                rows.append([split, variant, float(r), float(v)])
    return rows
