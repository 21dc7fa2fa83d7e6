"""A sweep's outcome read from its jobs' ``summary.json`` files (works for every launcher).

Jobs may run in other processes or on other machines (``certssb_gpu``, SLURM), so the parent
cannot count failures from in-process state: it reads what each job of this sweep left in its
output folder. A job folder is one holding Hydra's ``.hydra/`` record; it belongs to this sweep
when that record was (re)written after the sweep started (Hydra rewrites it at every job start,
also for jobs that then skip because they are complete).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from certssb.run_record import failure_text

# Filesystem timestamps lag the wall clock by up to a scheduler tick (a few ms): records written
# up to this long before the sweep's start time still count as this sweep's.
CLOCK_SLACK_S = 1.0
OK_STATUSES = {"complete", "members_trained"}


@dataclass
class JobOutcome:
    """One job folder: ``ok`` or the reason it failed."""

    folder: Path
    ok: bool
    reason: str = ""


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def job_folders(sweep_dir: Path, since: float | None = None) -> list[Path]:
    """Job folders under ``sweep_dir`` whose Hydra record is newer than ``since`` (epoch s)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        return []
    found = []
    for record in sweep_dir.rglob(".hydra"):
        folder = record.parent
        if ".submitit" in folder.relative_to(sweep_dir).parts:
            continue
        stamp = record / "overrides.yaml"
        if not stamp.is_file():
            continue
        if since is not None and stamp.stat().st_mtime < since - CLOCK_SLACK_S:
            continue
        found.append(folder)
    return sorted(found, key=_natural_key)


def job_outcome(folder: Path) -> JobOutcome:
    """Read ``folder/summary.json``: complete, members_trained -> ok; anything else failed."""
    path = Path(folder) / "summary.json"
    if not path.is_file():
        return JobOutcome(folder, False, "no summary.json (the job crashed or was killed; see its log)")
    try:
        summary = json.loads(path.read_text())
        status = summary.get("status")
    except (OSError, ValueError, AttributeError) as exc:
        return JobOutcome(folder, False, f"unreadable summary.json ({type(exc).__name__})")
    if status in OK_STATUSES:
        return JobOutcome(folder, True)
    if status == "failed":  # its error line (an unexpected exception's with its type and traceback file)
        return JobOutcome(folder, False, failure_text(summary))
    return JobOutcome(folder, False, f"summary.json says status {status!r} (the job did not finish; see its log)")


def failure_line(outcomes: list[JobOutcome]) -> str | None:
    """``K of M jobs failed; first: <folder>: <reason>`` or None when every job is ok."""
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        return None
    first = failed[0]
    return f"{len(failed)} of {len(outcomes)} jobs failed; first: {first.folder}: {first.reason}"
