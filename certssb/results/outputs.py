"""The files of a run: ``summary.json``, ``certificates.csv``, ``votes.npz`` (count family),
``sigmas.npz`` and the plots, each written atomically into the job's output dir."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from certssb.plots import plot_any_count, plot_curves, plot_poison_count, plot_sigma_histogram

from .split import SplitResult


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_summary(path: Path, summary: dict) -> None:
    _atomic_write(path, json.dumps(_json_safe(summary), indent=2, sort_keys=False) + "\n")


def _can_plot() -> bool:
    """matplotlib is importable (a GPU host may lack it: the PNGs are then skipped, with a log line)."""
    import importlib.util
    import logging

    if importlib.util.find_spec("matplotlib") is not None:
        return True
    logging.getLogger("certssb").warning("matplotlib is not installed: the PNG plots are not written")
    return False


def _write_votes(out: Path, results: dict[str, SplitResult]) -> None:
    arrays = {k: v for r in results.values() for k, v in r.votes.items()}
    if arrays:
        tmp = out / "votes.tmp.npz"
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, out / "votes.npz")


def write_outputs(out: Path, summary: dict, results: dict[str, SplitResult] | None,
                  sigmas: dict[str, np.ndarray] | None) -> None:
    """Write summary.json, certificates.csv, votes.npz (count family), sigmas.npz and the plots into ``out``."""
    out = Path(out)
    if results:
        table = pd.concat([r.table for r in results.values()], ignore_index=True)
        tmp = out / "certificates.csv.tmp"
        table.to_csv(tmp, index=False, float_format="%.10g")
        os.replace(tmp, out / "certificates.csv")
        _write_votes(out, results)
        if _can_plot():
            if summary.get("family") != "count":
                plot_curves(summary, out / "certified_accuracy.png")
                plot_poison_count(summary, out / "certified_poison_count.png")
            plot_any_count(summary, out / "certified_any_count.png")
    if sigmas:
        np.savez(out / "sigmas.npz", **sigmas)
        if summary.get("sigma", {}).get("optimiser") not in ("fixed", "none") and _can_plot():
            plot_sigma_histogram(sigmas, out / "sigma_histogram.png")
    write_summary(out / "summary.json", summary)
