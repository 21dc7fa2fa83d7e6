"""Reading runs from local folders: every directory with Hydra's ``.hydra/`` at or below the
given paths, its ``summary.json``, and the job folders of sweeps that Hydra never set up."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable

import pandas as pd

from certssb.errors import CertSSBError

from .overrides import parse_overrides, read_yaml
from .table import build_table

__all__ = ["collect_runs", "find_run_dirs", "natural_key", "read_run"]

SKIP_DIRS = {".hydra", ".submitit", "wandb", "__pycache__", "checkpoints", ".git"}


def natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def find_run_dirs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Every directory with a ``.hydra/`` subfolder at or below ``paths`` (naturally sorted)."""
    found: list[Path] = []
    for p in paths:
        root = Path(p)
        if not root.exists():
            raise CertSSBError(f"{root} does not exist; pass sweep or run directories")
        if not root.is_dir():
            raise CertSSBError(f"{root} is not a directory; pass sweep or run directories")
        for dirpath, dirnames, _ in os.walk(root):
            here = Path(dirpath)
            if (here / ".hydra").is_dir():
                found.append(here)
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
    unique = {d.resolve(): d for d in found}
    return sorted(unique.values(), key=natural_key)


def _sweep_job_dirs_without_hydra(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Numbered job subdirs of sweep dirs (``multirun.yaml``) that Hydra never set up."""
    out: list[Path] = []
    for p in paths:
        for multirun in Path(p).rglob("multirun.yaml"):
            if any(part in SKIP_DIRS for part in multirun.parts):
                continue
            for sub in multirun.parent.iterdir():
                if sub.is_dir() and sub.name.isdigit() and not (sub / ".hydra").is_dir():
                    if not any((d / ".hydra").is_dir() for d in sub.rglob("*") if d.is_dir()):
                        out.append(sub)
    return sorted(set(out), key=natural_key)


def read_run(run_dir: Path) -> tuple[dict | None, str | None, str]:
    """(summary, reason-if-missing-or-failed, status)."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return None, "no summary.json", "missing"
    try:
        with open(path) as f:
            summary = json.load(f)
    except (OSError, ValueError) as err:
        return None, f"unreadable summary.json ({type(err).__name__}: {err})".splitlines()[0], "unreadable"
    if not isinstance(summary, dict):
        return None, "summary.json is not a JSON object", "unreadable"
    status = str(summary.get("status", "unknown"))
    if status != "complete":
        return summary, f"status={status}", status
    return summary, None, status


def collect_runs(paths: Iterable[str | os.PathLike], split: str = "clean",
                 variant: str = "joint") -> tuple[pd.DataFrame, list[dict]]:
    """Find the runs under ``paths``; one DataFrame row per complete run, plus the others.

    Returns ``(df, missing)``: ``df`` has the columns described in :mod:`certssb.tools.report`
    (``df.attrs``: see :func:`.table.build_table`); ``missing`` is a list of dicts
    ``{"run_dir", "status", "reason", **overrides}`` for run dirs without ``summary.json``, with
    an unreadable one or a status other than ``complete``. Raises :class:`CertSSBError` when no
    run dir (and no sweep job dir) is found.
    """
    paths = list(paths)
    if not paths:
        raise CertSSBError("no directories given; pass sweep or run directories")
    run_dirs = find_run_dirs(paths)
    orphan_jobs = _sweep_job_dirs_without_hydra(paths)
    if not run_dirs and not orphan_jobs:
        where = ", ".join(str(p) for p in paths)
        raise CertSSBError(f"no runs found under {where} (looked for directories containing .hydra/)")
    records: list[dict] = []
    for run_dir in run_dirs:
        overrides = parse_overrides(read_yaml(run_dir / ".hydra" / "overrides.yaml") or [])
        summary, reason, status = read_run(run_dir)
        records.append({"run_dir": run_dir, "overrides": overrides, "summary": summary, "reason": reason,
                        "status": status})
    for job in orphan_jobs:
        records.append({"run_dir": job, "overrides": {}, "summary": None, "status": "missing",
                        "reason": "job never started (no .hydra/)", "orphan": True})
    return build_table(records, split, variant)
