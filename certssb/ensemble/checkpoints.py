"""Per-member checkpoint files, written atomically and tagged with a run fingerprint."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import torch

from certssb.errors import CertSSBError


def fingerprint_of(obj) -> str:
    """A stable sha256 hex digest of ``obj`` dumped as JSON with sorted keys.

    Objects JSON cannot encode (tuples become lists; anything else) are encoded with ``str``.
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class CheckpointStore:
    """``directory/member_{k:05d}.pt`` holding ``{"fingerprint", "member", "state_dict", "meta"}``.

    A file whose stored fingerprint differs from this store's (another configuration, another
    data set, a different seed...) is treated as absent: ``has`` returns False, a warning is
    issued once per store, and training overwrites it.
    """

    def __init__(self, directory, fingerprint: str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fingerprint = str(fingerprint)
        self._warned = False

    def path(self, k: int) -> Path:
        return self.directory / f"member_{int(k):05d}.pt"

    def _read(self, k: int, mmap: bool):
        return torch.load(self.path(k), map_location="cpu", weights_only=True, mmap=mmap)

    def has(self, k: int) -> bool:
        p = self.path(k)
        if not p.is_file():
            return False
        try:
            stored = self._read(k, mmap=True).get("fingerprint")  # mmap: tensors are not read
        except Exception as exc:  # truncated or foreign file: retrain
            warnings.warn(f"unreadable checkpoint {p} ({type(exc).__name__}); it will be retrained", stacklevel=2)
            return False
        if stored != self.fingerprint:
            if not self._warned:
                warnings.warn(f"checkpoint {p} has fingerprint {str(stored)[:12]}..., expected "
                              f"{self.fingerprint[:12]}...; treating mismatched members in {self.directory} "
                              f"as absent (they will be retrained)", stacklevel=2)
                self._warned = True
            return False
        return True

    def missing(self, members) -> list[int]:
        return [int(k) for k in members if not self.has(k)]

    def save(self, k: int, state_dict, meta=None) -> Path:
        """Write member ``k`` atomically (temp file in the same directory, then ``os.replace``)."""
        state = {key: v.detach().to("cpu").clone() for key, v in state_dict.items()}
        payload = {"fingerprint": self.fingerprint, "member": int(k), "state_dict": state,
                   "meta": dict(meta or {})}
        target = self.path(k)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(payload, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return target

    def load(self, k: int) -> dict:
        """The state dict of member ``k`` (loaded with ``weights_only=True``)."""
        p = self.path(k)
        if not p.is_file():
            raise CertSSBError(f"checkpoint of member {k} not found at {p}; train the ensemble first")
        payload = self._read(k, mmap=False)
        if payload.get("fingerprint") != self.fingerprint:
            raise CertSSBError(f"checkpoint {p} belongs to another configuration (fingerprint mismatch); retrain it")
        return payload["state_dict"]

    def load_meta(self, k: int) -> dict:
        return self._read(k, mmap=True).get("meta", {})
