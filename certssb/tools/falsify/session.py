"""What both checks share around their runners: the working folder (under ``--out`` or a
temporary one), torch's thread count for the check's duration, and writing ``falsify.json``."""

from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch

from certssb.ensemble.checkpoints import CheckpointStore, fingerprint_of

__all__ = ["checkpoint_store", "discard", "session", "write_report"]


@contextmanager
def session(threads: int | None, out: Path | None, workdir: Path | None):
    """Yield the working folder (``workdir``, else ``out/work``, else a temporary folder removed
    afterwards) with torch's intra-op threads set to ``threads`` (restored afterwards)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    tmp = None
    try:
        if workdir is None:
            if out is not None:
                workdir = Path(out) / "work"
            else:
                tmp = tempfile.TemporaryDirectory(prefix="certssb-falsify-")
                workdir = Path(tmp.name)
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
    finally:
        torch.set_num_threads(before)
        if tmp is not None:
            tmp.cleanup()


def checkpoint_store(workdir: Path, tag: str, content: dict) -> CheckpointStore:
    """A checkpoint store under ``workdir/members`` named by ``tag`` and a fingerprint of ``content``."""
    fp = fingerprint_of(content)
    return CheckpointStore(Path(workdir) / "members" / f"{tag}-{fp[:12]}", fp)


def discard(stores, keep: bool) -> None:
    """Delete the stores' folders unless ``keep`` (``stores``: one store, a list or a dict of them)."""
    if keep:
        return
    if isinstance(stores, dict):
        stores = list(stores.values())
    for store in stores if isinstance(stores, (list, tuple)) else [stores]:
        shutil.rmtree(store.directory, ignore_errors=True)


def write_report(report: dict, out: Path | None) -> None:
    """``out/falsify.json`` (nothing without ``out``)."""
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "falsify.json").write_text(json.dumps(report, indent=2))
