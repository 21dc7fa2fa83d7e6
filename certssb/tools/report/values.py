"""How the report shows values: cell formatting, Markdown tables, which swept parameters vary,
and run folders relative to their common parent."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

__all__ = ["display_base", "fmt", "md_table", "relative", "varying"]


def varying(df: pd.DataFrame, params: Sequence[str], missing: Sequence[dict] = ()) -> list[str]:
    """The swept parameters whose value is not the same in every run (missing ones included)."""
    out = []
    for key in params:
        vals = {json.dumps(v, default=str) for v in df[key].tolist()} if key in df else set()
        vals |= {json.dumps(m.get(key), default=str) for m in missing}
        if len(vals) > 1:
            out.append(key)
    return out


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def md_table(records: list[dict], columns: Sequence[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for rec in records:
        lines.append("| " + " | ".join(fmt(rec.get(c)) for c in columns) + " |")
    return lines


def display_base(paths: Sequence[str]) -> Path | None:
    """The deepest directory above all ``paths`` (their common parent), None if there is none."""
    if not paths:
        return None
    try:
        common = Path(os.path.commonpath([os.path.abspath(p) for p in paths]))
    except ValueError:  # pragma: no cover - different drives on Windows
        return None
    if len(paths) == 1:
        common = common.parent
    return common


def relative(path: str, base: Path | None) -> str:
    if base is None:
        return path
    try:
        return os.path.relpath(os.path.abspath(path), base)
    except ValueError:  # pragma: no cover - other drive on Windows
        return path
