"""A run's output folder: writable, marked while the run is in progress, its summary read safely.

``summary.json`` says ``running`` from the start of a run until the run writes its final
summary, so a killed run never looks complete and a sweep counts it as failed. A run that fails
with an exception replaces the marker with a failed record (:func:`record_failure`):

    {"status": "failed", "error": "<one line>", "error_type": "<exception class>",
     "output_dir": "...", "traceback": "<output_dir>/traceback.txt"}

``traceback`` is there only for unexpected exceptions (bugs, out of memory, ...), whose
traceback goes to that file and to the job log; input errors (:class:`CertSSBError`) and an
interrupt (Ctrl-C) are their one line. :func:`failure_text` is the line the console and the
sweep's failed-jobs line show for such a record.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import tempfile
import traceback
from pathlib import Path

from certssb.errors import CertSSBError, one_line

log = logging.getLogger("certssb")

#: the file in the output folder that holds an unexpected exception's traceback
TRACEBACK_NAME = "traceback.txt"
#: where a failed run's record is attached to its exception (the entry point reads it)
RECORD_ATTR = "certssb_failure"
#: the knobs that bound memory, named in an out-of-memory failure's line
OOM_HINT = ("lower ensemble.group_size (members trained or evaluated at once; null sizes it from free memory), "
            "ensemble.eval_batch_size or sigma_optimiser.batch_size, or use a device with more memory")


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


def is_out_of_memory(exc: BaseException) -> bool:
    """``MemoryError``, torch's ``OutOfMemoryError`` or a RuntimeError of an allocator that ran out."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")  # imported by whatever raised a torch error; never imported here
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _first_sentences(text: str, limit: int = 160) -> str:
    """The leading sentences of ``text`` that fit ``limit`` characters (at least the first, cut)."""
    kept = ""
    for sentence in re.split(r"(?<=\.)\s+", text):
        if kept and len(kept) + 1 + len(sentence) > limit:
            break
        kept = f"{kept} {sentence}".strip()
    return kept if len(kept) <= limit else kept[: limit - 3] + "..."


def failure_reason(exc: BaseException) -> str:
    """The one-line reason a run failed with ``exc`` (an out-of-memory error gets the knobs to turn)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, CertSSBError):
        return text or type(exc).__name__
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; rerun with the same output dir to resume from its member checkpoints"
    if is_out_of_memory(exc):
        return f"out of memory ({_first_sentences(text) or type(exc).__name__}); {OOM_HINT}"
    return one_line(exc, 300)


def expected(exc: BaseException) -> bool:
    """Input errors and interrupts: their line says it all (no traceback is kept)."""
    return isinstance(exc, (CertSSBError, KeyboardInterrupt))


def _file_handlers(logger: logging.Logger) -> list[logging.FileHandler]:
    """The file handlers a record of ``logger`` reaches (Hydra's job log ``<job>.log`` among them)."""
    found, current = [], logger
    while current is not None:
        found += [h for h in current.handlers if isinstance(h, logging.FileHandler)]
        current = current.parent if current.propagate else None
    return found


def log_to_files(level: int, message: str, exc: BaseException | None = None) -> None:
    """Log ``message`` (and ``exc``'s traceback) to the log files only, not to the console."""
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = log.makeRecord(log.name, level, __file__, 0, message, (), exc_info)
    for handler in _file_handlers(log):
        if record.levelno >= handler.level:
            handler.handle(record)


def write_traceback(out: Path, exc: BaseException) -> tuple[Path, str | None]:
    """Write ``exc``'s traceback to ``out/traceback.txt``; returns the path and None, or the
    reason it could not be written."""
    path = Path(out) / TRACEBACK_NAME
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        path.write_text(text)
    except OSError as write_error:
        return path, write_error.strerror or type(write_error).__name__
    return path, None


def failure_record(out: Path, exc: BaseException) -> dict:
    """The failed record of a run in ``out`` that raised ``exc``; for an unexpected exception its
    traceback is written to ``out/traceback.txt`` (named by the record) and the job log."""
    record = {"status": "failed", "error": failure_reason(exc), "error_type": type(exc).__name__,
              "output_dir": str(out)}
    if not expected(exc):
        path, problem = write_traceback(out, exc)
        record["traceback"] = str(path) if problem is None else None
        if problem is not None:
            log.error("error: cannot write %s (%s)", path, problem)
        log_to_files(logging.ERROR, f"{type(exc).__name__} in the run in {out}:", exc)
    return record


def failure_text(record: dict) -> str:
    """The one line that reports a failed record: the reason of an input error;
    ``<Type>: <reason> (traceback in <path>)`` of an unexpected exception."""
    error = str(record.get("error", "failed"))
    if "traceback" not in record:
        return error
    where = record["traceback"]
    place = f"traceback in {where}" if where else "its traceback could not be written; see the job log"
    return f"{record.get('error_type', 'Exception')}: {error} ({place})"


def record_failure(out: Path, exc: BaseException, write: bool = True) -> dict:
    """Replace the ``running`` marker in ``out`` with the failed record of ``exc`` (unless ``write``
    is false) and attach the record to ``exc`` (:data:`RECORD_ATTR`), so that whoever reports the
    failure reuses it. Never raises: a folder that cannot be written is logged in one line."""
    record = failure_record(out, exc)
    if write:
        path = Path(out) / "summary.json"
        try:  # plain json (the record holds strings only): nothing to import, whatever failed
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(record, indent=2) + "\n")
            os.replace(tmp, path)
        except OSError as write_error:  # e.g. a read-only folder: a sweep counts the run as failed anyway
            log.error("error: cannot write %s (%s)", Path(out) / "summary.json",
                      write_error.strerror or type(write_error).__name__)
    try:
        setattr(exc, RECORD_ATTR, record)
    except AttributeError:  # pragma: no cover - exceptions accept attributes
        pass
    return record
