"""A run's output folder: writable, marked while the run is in progress, its summary read safely.

``summary.json`` says ``running`` from the start of a run until the run writes its final
summary, so a killed or crashed run never looks complete and a sweep counts it as failed.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from certssb.errors import CertSSBError

log = logging.getLogger("certssb")


def prepare_output_dir(out: Path) -> None:
    """Create ``out`` and check a file can be written there; one-line error otherwise."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CertSSBError(f"output directory {out} is not writable ({exc.strerror or type(exc).__name__}); "
                           f"choose another (hydra.run.dir=... or hydra.sweep.dir=...)") from None


def mark_running(out: Path) -> None:
    """Write ``summary.json`` with status ``running`` (replaced by the final summary)."""
    from certssb.results import write_summary

    write_summary(out / "summary.json", {"status": "running", "output_dir": str(out)})


def read_summary(path: Path) -> dict | None:
    """The summary at ``path``; None if absent. A half-written or garbage file is logged in one
    line and treated as absent (the run is then recomputed)."""
    if not path.exists():
        return None
    try:
        summary = json.loads(path.read_text())
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
        return summary
    except (OSError, ValueError) as exc:
        log.warning("%s is unreadable (%s: %s); the run is recomputed", path, type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "")
        return None


def check_writable_target(path: Path) -> str | None:
    """Before Hydra writes anything: None if ``path`` exists as a writable folder or can be created
    (its nearest existing ancestor is a writable folder); else a one-line reason."""
    path = Path(path).absolute()
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"output directory {path} cannot be created: {probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"output directory {path} is not writable ({probe}: permission denied)"
    return None
