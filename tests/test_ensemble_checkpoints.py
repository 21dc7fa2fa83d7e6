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
