import os

import pytest
import torch

from certssb.ensemble import CheckpointStore, fingerprint_of
from certssb.errors import CertSSBError


def test_fingerprint_stable_and_sensitive():
    a = fingerprint_of({"b": 1, "a": [1, 2], "c": {"x": 0.5}})
    assert a == fingerprint_of({"c": {"x": 0.5}, "a": [1, 2], "b": 1})
    assert a != fingerprint_of({"b": 2, "a": [1, 2], "c": {"x": 0.5}})
    assert len(a) == 64


def test_save_load_roundtrip_and_missing(tmp_path):
    store = CheckpointStore(tmp_path / "ck", "fp1")
    sd = {"w": torch.randn(3, 4), "b": torch.arange(3)}
    assert not store.has(0) and store.missing(range(3)) == [0, 1, 2]
    store.save(1, sd, meta={"seconds": 1.5})
    assert store.has(1) and store.missing(range(3)) == [0, 2]
    back = store.load(1)
    assert torch.equal(back["w"], sd["w"]) and torch.equal(back["b"], sd["b"])
    assert store.load_meta(1)["seconds"] == 1.5
    with pytest.raises(CertSSBError):
        store.load(0)
    assert not [f for f in os.listdir(tmp_path / "ck") if f.endswith(".tmp")]


def test_load_uses_weights_only(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path, "fp")
    store.save(0, {"w": torch.ones(2)})
    seen = []
    real = torch.load

    def spy(*a, **k):
        seen.append(k.get("weights_only"))
        return real(*a, **k)

    monkeypatch.setattr(torch, "load", spy)
    store.load(0)
    store.has(0)
    assert seen and all(v is True for v in seen)


def test_save_is_atomic_when_interrupted(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path, "fp")
    store.save(0, {"w": torch.zeros(2)})

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        store.save(0, {"w": torch.ones(2)})
    with pytest.raises(KeyboardInterrupt):
        store.save(1, {"w": torch.ones(2)})
    # the old file is intact, no partial file became visible, no temp file left behind
    assert torch.equal(store.load(0)["w"], torch.zeros(2))
    assert not store.has(1) and sorted(os.listdir(tmp_path)) == ["member_00000.pt"]


def test_fingerprint_mismatch_is_absent_with_warning(tmp_path, caplog):
    CheckpointStore(tmp_path, "old").save(0, {"w": torch.ones(1)})
    store = CheckpointStore(tmp_path, "new")
    with caplog.at_level("WARNING", logger="certssb"):
        assert not store.has(0)
        assert store.missing(range(1)) == [0]
    assert len(caplog.records) == 1 and "fingerprint" in caplog.text  # one line, once per store
    with pytest.raises(CertSSBError):
        store.load(0)
    store.save(0, {"w": torch.zeros(1)})
    assert store.has(0)


def test_corrupt_file_is_absent(tmp_path, caplog):
    store = CheckpointStore(tmp_path, "fp")
    store.path(0).write_bytes(b"not a checkpoint")
    with caplog.at_level("WARNING", logger="certssb"):
        assert not store.has(0)
    assert "unreadable checkpoint" in caplog.text and "\n" not in caplog.records[0].getMessage()


def test_truncated_file_is_absent_and_load_says_so_in_one_line(tmp_path, caplog):
    store = CheckpointStore(tmp_path, "fp")
    store.save(0, {"w": torch.ones(1000)})
    data = store.path(0).read_bytes()
    store.path(0).write_bytes(data[: len(data) // 2])
    with caplog.at_level("WARNING", logger="certssb"):
        assert not store.has(0)
    assert "unreadable checkpoint" in caplog.text
    with pytest.raises(CertSSBError, match="unreadable") as err:
        store.load(0)
    assert "\n" not in str(err.value)


def test_checkpoint_under_another_members_name_is_absent(tmp_path, caplog):
    store = CheckpointStore(tmp_path, "fp")
    store.save(0, {"w": torch.ones(1)})
    store.path(1).write_bytes(store.path(0).read_bytes())  # member 0's file copied as member 1
    with caplog.at_level("WARNING", logger="certssb"):
        assert store.has(0) and not store.has(1)
    assert "member 0, expected 1" in caplog.text
    with pytest.raises(CertSSBError):
        store.load(1)


def test_unwritable_checkpoint_folder_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CertSSBError, match="cannot create the checkpoint folder"):
        CheckpointStore(blocker / "members", "fp")


def _checksum_lines(caplog):
    return [r.getMessage() for r in caplog.records if "checksum" in r.getMessage()]


def test_flipped_tensor_byte_is_absent_with_one_warning(tmp_path, caplog):
    from conftest import flip_tensor_byte

    store = CheckpointStore(tmp_path, "fp")
    store.save(0, {"w": torch.full((1000,), 1.5), "b": torch.arange(3)})
    flip_tensor_byte(store.path(0))
    assert torch.load(store.path(0), weights_only=True)["state_dict"]["w"].ne(1.5).sum() == 1  # still loads
    fresh = CheckpointStore(tmp_path, "fp")
    with caplog.at_level("WARNING", logger="certssb"):
        assert not fresh.has(0)
        assert fresh.missing(range(2)) == [0, 1]  # asked again: the same verdict, no second line
    lines = _checksum_lines(caplog)
    assert len(lines) == 1 and "fails its checksum" in lines[0] and "retrained" in lines[0], lines
    with pytest.raises(CertSSBError, match="fails its checksum") as err:
        fresh.load(0)
    assert "\n" not in str(err.value)
    fresh.save(0, {"w": torch.full((1000,), 1.5), "b": torch.arange(3)})  # retrained
    assert fresh.has(0) and CheckpointStore(tmp_path, "fp").has(0)


def test_checksum_covers_names_dtypes_and_values():
    from certssb.ensemble.checkpoints import state_checksum

    sd = {"w": torch.ones(2, 3), "b": torch.zeros(3)}
    base = state_checksum(sd)
    assert base == state_checksum({"b": torch.zeros(3), "w": torch.ones(2, 3)})  # key order does not matter
    assert base != state_checksum({"w": torch.ones(2, 3), "c": torch.zeros(3)})
    assert base != state_checksum({"w": torch.ones(3, 2), "b": torch.zeros(3)})
    assert base != state_checksum({"w": torch.ones(2, 3, dtype=torch.float64), "b": torch.zeros(3)})
    flipped = torch.ones(2, 3)
    flipped[1, 2] = 1.0000001
    assert base != state_checksum({"w": flipped, "b": torch.zeros(3)})


def test_checkpoint_without_checksum_is_used_with_one_note(tmp_path, caplog):
    """Checkpoints written before checksums existed stay usable (fingerprint and member checked)."""
    store = CheckpointStore(tmp_path, "fp")
    for k in range(2):
        torch.save({"fingerprint": "fp", "member": k, "state_dict": {"w": torch.full((4,), float(k))}, "meta": {}},
                   store.path(k))
    torch.save({"fingerprint": "other", "member": 2, "state_dict": {"w": torch.ones(4)}, "meta": {}}, store.path(2))
    with caplog.at_level("INFO", logger="certssb"):
        assert store.missing(range(3)) == [2]
        assert torch.equal(store.load(1)["w"], torch.ones(4))
    notes = [r.getMessage() for r in caplog.records if "predate checksums" in r.getMessage()]
    assert len(notes) == 1 and "\n" not in notes[0]


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_files_of_killed_saves_are_removed(tmp_path, caplog):
    from certssb.ensemble.checkpoints import STALE_TEMP_AGE_S, TEMP_NAME, _host

    host = _host()
    dead = tmp_path / f".member_00001.pt.{_dead_pid()}@{host}.a1b2c3.tmp"
    live = tmp_path / f".member_00002.pt.{os.getpid()}@{host}.d4e5f6.tmp"
    other_host = tmp_path / f".member_00003.pt.{_dead_pid()}@{host}x.g7h8i9.tmp"  # cannot be checked here
    old_other_host = tmp_path / f".member_00004.pt.{os.getpid()}@{host}x.j0k1l2.tmp"
    old_unnamed = tmp_path / ".member_00005.pt.m3n4o5.tmp"  # an older save's name: no pid
    young_unnamed = tmp_path / ".member_00006.pt.p6q7r8.tmp"
    old_live = tmp_path / f".member_00007.pt.{os.getpid()}@{host}.s9t0u1.tmp"  # a pid reused since the kill
    for f in (dead, live, other_host, old_other_host, old_unnamed, young_unnamed, old_live):
        f.write_bytes(b"partial")
    assert TEMP_NAME.match(dead.name) and TEMP_NAME.match(other_host.name) and not TEMP_NAME.match(old_unnamed.name)
    long_ago = __import__("time").time() - STALE_TEMP_AGE_S - 60
    for f in (old_other_host, old_unnamed, old_live):
        os.utime(f, (long_ago, long_ago))
    with caplog.at_level("INFO", logger="certssb"):
        store = CheckpointStore(tmp_path, "fp")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([live.name, other_host.name, young_unnamed.name]), left
    assert "removed 4 temporary checkpoint file(s) of killed saves" in caplog.text
    assert store.missing(range(8)) == list(range(8))  # temp files are never members


def test_temp_file_of_a_save_names_its_writer(tmp_path, monkeypatch):
    from certssb.ensemble.checkpoints import TEMP_NAME, _host

    store = CheckpointStore(tmp_path, "fp")
    seen, real = [], torch.save

    def spy(obj, fh, *a, **k):
        seen.extend(p.name for p in tmp_path.glob(".member_*.tmp"))
        return real(obj, fh, *a, **k)

    monkeypatch.setattr(torch, "save", spy)
    store.save(3, {"w": torch.ones(2)})
    (name,) = seen
    match = TEMP_NAME.match(name)
    assert match and name.startswith(".member_00003.pt.") and match["host"] == _host()
    assert int(match["pid"]) == os.getpid()
    assert not list(tmp_path.glob("*.tmp")) and CheckpointStore(tmp_path, "fp").has(3)  # renamed into place


def test_save_group_writes_what_single_saves_write(tmp_path):
    """A vectorised group's checkpoints are written by parallel writers: the same files (each
    atomic, checksummed) as one save after another; a failed write raises once the others finish."""
    from certssb.ensemble.saving import save_group
    states = {k: {"w": torch.full((3, 4), float(k)), "b": torch.arange(4) + k} for k in range(6)}
    seq, par = CheckpointStore(tmp_path / "seq", "fp"), CheckpointStore(tmp_path / "par", "fp")
    for k in range(6):
        seq.save(k, states[k], meta={"member": k})
    assert save_group(par, [(k, states[k], {"member": k}) for k in range(6)]) == list(range(6))
    for k in range(6):
        a, b = seq.load(k), par.load(k)
        assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)
        assert par.load_meta(k) == {"member": k}
    assert not list((tmp_path / "par").glob(".*.tmp"))

    class Failing(CheckpointStore):
        def save(self, k, state_dict, meta=None):
            if k == 2:
                raise CertSSBError("disk full")
            return super().save(k, state_dict, meta)

    bad = Failing(tmp_path / "bad", "fp")
    with pytest.raises(CertSSBError, match="disk full"):
        save_group(bad, [(k, states[k], {}) for k in range(6)])
    assert bad.missing(range(6)) == [2]
