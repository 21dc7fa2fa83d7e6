"""The per-sample sigmas of a run, cached next to the member checkpoints.

``sigmas-<fp16>.npz`` holds the fingerprint of everything the sigmas depend on and three float32
arrays (train, test_clean, test_triggered). A cache that cannot be read, belongs to another
fingerprint, has the wrong lengths or holds a non-finite or non-positive sigma is logged in one
line and ignored: the sigmas are recomputed and the cache rewritten.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger("certssb")

PARTS = ("train", "test_clean", "test_triggered")


def cache_path(directory: Path, fingerprint: str) -> Path:
    return Path(directory) / f"sigmas-{fingerprint[:16]}.npz"


def load_sigmas(path: Path, fingerprint: str, lengths: dict[str, int]) -> dict[str, np.ndarray] | None:
    """The cached arrays (by part name) if the cache at ``path`` is sound, else None."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["fingerprint"]) != fingerprint:
                log.warning("sigma cache %s belongs to another configuration; recomputing the sigmas", path)
                return None
            arrays = {part: np.array(data[part], dtype=np.float32) for part in PARTS}
    except Exception as exc:  # truncated zip, garbage, missing arrays
        log.warning("sigma cache %s is unreadable (%s); recomputing the sigmas", path, type(exc).__name__)
        return None
    for part, n in lengths.items():
        a = arrays[part]
        if a.shape != (n,) or not np.all(np.isfinite(a)) or not np.all(a > 0):
            log.warning("sigma cache %s holds invalid %s sigmas (shape %s, expected (%d,), or non-finite or "
                        "non-positive values); recomputing the sigmas", path, part, a.shape, n)
            return None
    log.info("reusing per-sample sigmas from %s", path)
    return arrays


def save_sigmas(path: Path, fingerprint: str, arrays: dict[str, np.ndarray]) -> None:
    """Write the cache atomically; an unwritable folder is logged and skipped (the cache is optional)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp.npz", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, fingerprint=np.array(fingerprint), **{p: np.asarray(arrays[p]) for p in PARTS})
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot write the sigma cache %s (%s); continuing without it", path,
                    exc.strerror or type(exc).__name__)
