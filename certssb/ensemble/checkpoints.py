"""Per-member checkpoint files, written atomically and tagged with a run fingerprint."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import torch

from certssb.errors import CertSSBError

log = logging.getLogger("certssb")


def fingerprint_of(obj) -> str:
    """A stable sha256 hex digest of ``obj`` dumped as JSON with sorted keys.

    Objects JSON cannot encode (tuples become lists; anything else) are encoded with ``str``.
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class CheckpointStore:
    """``directory/member_{k:05d}.pt`` holding ``{"fingerprint", "member", "state_dict", "meta"}``.

    A file that cannot be read (truncated, garbage) or whose stored fingerprint or member index
    differs from this store's (another configuration, data set, seed; a file copied under another
    name) is treated as absent: ``has`` returns False, one warning line is logged (per file for
    unreadable ones, once per store for foreign ones), and training overwrites it.
    """

    def __init__(self, directory, fingerprint: str):
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CertSSBError(f"cannot create the checkpoint folder {self.directory} "
                               f"({exc.strerror or type(exc).__name__})") from None
        self.fingerprint = str(fingerprint)
        self._warned = False

    def path(self, k: int) -> Path:
        return self.directory / f"member_{int(k):05d}.pt"

    def _read(self, k: int, mmap: bool):
        payload = torch.load(self.path(k), map_location="cpu", weights_only=True, mmap=mmap)
        if not isinstance(payload, dict):
            raise ValueError(f"a {type(payload).__name__}, not a checkpoint record")
        return payload

    def has(self, k: int) -> bool:
        p = self.path(k)
        if not p.is_file():
            return False
        try:
            payload = self._read(k, mmap=True)  # mmap: the tensors are not read
            stored, member = payload.get("fingerprint"), payload.get("member")
            tensors = payload["state_dict"]
            if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
                raise ValueError("no state dict of tensors")
        except Exception as exc:  # truncated, garbage or foreign file: retrain
            log.warning("unreadable checkpoint %s (%s); it will be retrained", p, type(exc).__name__)
            return False
        if stored != self.fingerprint or member != int(k):
            if not self._warned:
                what = (f"fingerprint {str(stored)[:12]}..., expected {self.fingerprint[:12]}..."
                        if stored != self.fingerprint else f"member {member}, expected {int(k)}")
                log.warning("checkpoint %s has %s; treating mismatched members in %s as absent "
                            "(they will be retrained)", p, what, self.directory)
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
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=self.directory)
        except OSError as exc:
            raise CertSSBError(f"cannot write checkpoints into {self.directory} "
                               f"({exc.strerror or type(exc).__name__})") from None
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
        try:
            payload = self._read(k, mmap=False)
        except Exception as exc:
            raise CertSSBError(f"checkpoint {p} is unreadable ({type(exc).__name__}); delete it and rerun to "
                               f"retrain it") from None
        if payload.get("fingerprint") != self.fingerprint or payload.get("member") != int(k):
            raise CertSSBError(f"checkpoint {p} belongs to another configuration (fingerprint mismatch); retrain it")
        return payload["state_dict"]

    def load_meta(self, k: int) -> dict:
        return self._read(k, mmap=True).get("meta", {})
