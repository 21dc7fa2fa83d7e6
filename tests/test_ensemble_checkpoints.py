import os
import warnings

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


def test_fingerprint_mismatch_is_absent_with_warning(tmp_path):
    CheckpointStore(tmp_path, "old").save(0, {"w": torch.ones(1)})
    store = CheckpointStore(tmp_path, "new")
    with pytest.warns(UserWarning, match="fingerprint"):
        assert not store.has(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.missing(range(1)) == [0]  # warned once per store
    with pytest.raises(CertSSBError):
        store.load(0)
    store.save(0, {"w": torch.zeros(1)})
    assert store.has(0)


def test_corrupt_file_is_absent(tmp_path):
    store = CheckpointStore(tmp_path, "fp")
    store.path(0).write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning):
        assert not store.has(0)
