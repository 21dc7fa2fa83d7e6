"""Per-member checkpoint files, written atomically, tagged with a run fingerprint and checksummed."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import socket
import tempfile
import time
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


def state_checksum(state_dict) -> str:
    """``sha256:<hex>`` over a state dict's tensors: each key (sorted) with its dtype, shape and bytes."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().to("cpu").contiguous()
        digest.update(f"{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return "sha256:" + digest.hexdigest()


#: a temporary file of a save: ``.member_00007.pt.<pid>@<host>.<random>.tmp``
TEMP_NAME = re.compile(r"^\.member_\d+\.pt\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9_-]+)\.[A-Za-z0-9_]+\.tmp$")
#: a temporary file whose writer cannot be checked (another host, or no pid in its name) is stale
#: after this long untouched (a save writes one member: seconds)
STALE_TEMP_AGE_S = 24 * 3600


@functools.cache
def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:64] or "host"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, another user's
        return True
    return True


class CheckpointStore:
    """``directory/member_{k:05d}.pt`` holding ``{"fingerprint", "member", "state_dict", "checksum", "meta"}``.

    A file that cannot be read (truncated, garbage), whose stored fingerprint or member index
    differs from this store's (another configuration, data set, seed; a file copied under another
    name) or whose tensors no longer match their checksum (bytes changed on disk) is treated as
    absent: ``has`` returns False, one warning line is logged (per file for unreadable and
    checksum failures, once per store for foreign ones), and training overwrites it. A verdict is
    kept per file while the file is unchanged, so the tensors are hashed once per store.

    Checkpoints written before checksums existed (no ``checksum`` key) are accepted, with one
    info line per store: they pass the same fingerprint and member checks as before, and
    retraining a finished ensemble because it predates a format change would cost its whole
    training time.

    Opening a store removes the temporary files of saves that were killed: one written on this
    host by a process that no longer runs, and any untouched for :data:`STALE_TEMP_AGE_S` (a save
    takes seconds; this covers writers that cannot be checked: another host sharing the folder,
    an older name without a pid, a pid reused since).
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
        self._noted_legacy = False
        self._verdicts: dict[int, tuple[tuple, bool]] = {}  # k -> (file identity, sound)
        self.remove_stale_temps()

    def path(self, k: int) -> Path:
        return self.directory / f"member_{int(k):05d}.pt"

    def remove_stale_temps(self) -> list[Path]:
        """Delete temporary files of killed saves (see the class docstring); returns those removed."""
        removed = []
        now = time.time()
        for tmp in self.directory.glob(".member_*.tmp"):
            match = TEMP_NAME.match(tmp.name)
            try:
                stale = ((match is not None and match["host"] == _host() and not _pid_alive(int(match["pid"])))
                         or now - tmp.stat().st_mtime > STALE_TEMP_AGE_S)  # (a pid reused since is no writer)
                if stale:
                    tmp.unlink()
                    removed.append(tmp)
            except OSError:  # gone meanwhile (its writer finished) or not ours to delete: leave it
                continue
        if removed:
            log.info("removed %d temporary checkpoint file(s) of killed saves in %s", len(removed), self.directory)
        return removed

    @staticmethod
    def _identity(p: Path) -> tuple | None:
        try:
            st = p.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _verified(self, k: int, p: Path) -> bool:
        """True if this store already found member ``k``'s file, unchanged since, sound."""
        verdict = self._verdicts.get(int(k))
        return verdict is not None and verdict[1] and verdict[0] == self._identity(p)

    def _read(self, k: int, mmap: bool):
        payload = torch.load(self.path(k), map_location="cpu", weights_only=True, mmap=mmap)
        if not isinstance(payload, dict):
            raise ValueError(f"a {type(payload).__name__}, not a checkpoint record")
        return payload

    def has(self, k: int) -> bool:
        p = self.path(k)
        identity = self._identity(p) if p.is_file() else None
        if identity is None:
            return False
        verdict = self._verdicts.get(int(k))
        if verdict is not None and verdict[0] == identity:
            return verdict[1]  # checked already, logged already
        sound = self._check(k, p)
        self._verdicts[int(k)] = (identity, sound)
        return sound

    def _check(self, k: int, p: Path) -> bool:
        try:
            payload = self._read(k, mmap=True)  # mmap: only the checksum reads the tensors
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
        checksum = payload.get("checksum")
        if checksum is None:
            self._note_legacy(p)
            return True
        try:
            actual = state_checksum(tensors)
        except Exception as exc:  # a tensor whose bytes cannot be read (e.g. the file shrank under the mmap)
            log.warning("unreadable checkpoint %s (%s); it will be retrained", p, type(exc).__name__)
            return False
        if actual != checksum:
            log.warning("checkpoint %s fails its checksum (its tensors changed on disk); it will be retrained", p)
            return False
        return True

    def _note_legacy(self, p: Path) -> None:
        if not self._noted_legacy:
            log.info("checkpoints in %s predate checksums (e.g. %s); they are used, checked by fingerprint and "
                     "member index only", self.directory, p.name)
            self._noted_legacy = True

    def missing(self, members) -> list[int]:
        return [int(k) for k in members if not self.has(k)]

    def save(self, k: int, state_dict, meta=None) -> Path:
        """Write member ``k`` atomically (temp file named with this process's pid and host in the same
        directory, then ``os.replace``), with the checksum of its tensors."""
        state = {key: v.detach().to("cpu").clone() for key, v in state_dict.items()}
        payload = {"fingerprint": self.fingerprint, "member": int(k), "state_dict": state,
                   "checksum": state_checksum(state), "meta": dict(meta or {})}
        target = self.path(k)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}@{_host()}.", suffix=".tmp",
                                       dir=self.directory)
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
        self._verdicts[int(k)] = (self._identity(target), True)  # written from these very tensors
        return target

    def load(self, k: int) -> dict:
        """The state dict of member ``k`` (loaded with ``weights_only=True``, checksum verified unless
        this store verified the unchanged file already)."""
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
        state = payload["state_dict"]
        checksum = payload.get("checksum")
        if checksum is None:
            self._note_legacy(p)
        elif not self._verified(k, p) and state_checksum(state) != checksum:
            raise CertSSBError(f"checkpoint {p} fails its checksum (its tensors changed on disk); rerun to retrain it")
        return state

    def load_meta(self, k: int) -> dict:
        return self._read(k, mmap=True).get("meta", {})
