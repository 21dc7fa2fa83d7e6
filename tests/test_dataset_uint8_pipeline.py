"""uint8 images through the pipeline: loaded splits, the poisoned set, the triggered test set,
batches on other devices and a run whose certificates equal those of the float path."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from certssb.attack.poisoning import PoisonedData, poison, realised_l2
from certssb.attack.triggered import TriggeredImages
from certssb.config import load_option, parse_run
from certssb.dataset import DatasetSplits, PatchedImages, Uint8Images, as_images, load_dataset
from certssb.ensemble.predict_grid import TiledImages
from certssb.errors import ConfigError


def _digits() -> DatasetSplits:
    return load_dataset(load_option("dataset", "digits"), seed=0)


def _as_float(splits: DatasetSplits) -> DatasetSplits:
    """The same splits as float32 tensors (what ``load_dataset`` held before)."""
    return splits.to_float()


def test_loaded_splits_hold_uint8_a_quarter_of_float():
    splits = _digits()
    for x in (splits.x_train, splits.x_test):
        assert isinstance(x, Uint8Images) and x.data.dtype == torch.uint8 and x.scale == 16.0
        assert x.nbytes == len(x) * 64 and x.nbytes * 4 == x.to_float().numel() * x.to_float().element_size()
        # batch by batch == the whole set converted at once == the old load_dataset conversion
        whole = x.data.to(torch.float32) / 16.0
        assert torch.equal(torch.cat(list(x.batches(100))), whole) and torch.equal(x.to_float(), whole)
    assert splits.input_shape == (1, 8, 8)


def test_a_224_px_image_folder_holds_a_quarter_of_float_memory(tmp_path):
    for split in ("train", "test"):
        for k, (name, colour) in enumerate({"cat": (200, 10, 10), "dog": (10, 10, 200)}.items()):
            d = tmp_path / split / name
            d.mkdir(parents=True)
            for j in range(3):
                Image.new("RGB", (250 + 10 * j, 230), tuple(c + j for c in colour)).save(d / f"{j}.png")
    run = parse_run(_compose(["dataset=image_folder", f"dataset.root={tmp_path}"]))
    splits = load_dataset(run.dataset, seed=0)
    x = splits.x_train
    assert isinstance(x, Uint8Images) and x.shape == (6, 3, 224, 224)
    float_bytes = x.to_float().numel() * 4
    assert x.nbytes == x.data.untyped_storage().nbytes() == 6 * 3 * 224 * 224
    assert x.nbytes * 4 == float_bytes  # 0.9 MB instead of 3.6 MB
    assert x[0][0, 100, 100] == torch.tensor(200.0) / 255 and x[0].dtype == torch.float32


def _compose(overrides):
    from conftest import compose_cfg
    return compose_cfg(overrides)


def _attack(name: str, **kw):
    return load_option("attack", name, **kw)


@pytest.mark.parametrize("attack", ["badnets", "blended", "wanet", "sig", "onepixel"])
def test_poisoning_uint8_equals_the_float_path(attack):
    splits = _digits()
    settings = _attack(attack)
    u8, ref = poison(splits, settings, seed=3), poison(_as_float(splits), settings, seed=3)
    assert isinstance(ref.x_train, torch.Tensor) and isinstance(u8.x_test_triggered, TriggeredImages)
    assert torch.equal(u8.poisoned_index, ref.poisoned_index) and torch.equal(u8.y_train, ref.y_train)
    # realised sizes are unchanged, bit for bit
    for field in ("train_delta_l2", "test_delta_l2", "cross_delta_l2", "cross_index"):
        assert torch.equal(getattr(u8, field), getattr(ref, field)), field
    assert torch.equal(u8.x_train.to_float(), ref.x_train)
    assert torch.equal(u8.x_test_triggered.to_float(), ref.x_test_triggered)
    assert torch.equal(torch.cat(list(u8.x_test_triggered.batches(7))), ref.x_test_triggered)


def test_a_small_triggered_set_is_triggered_once_when_moved_and_a_large_one_per_batch(monkeypatch):
    """Prediction reads each batch once per member: a triggered set that fits the budget becomes
    one float copy on ``to`` (the same values), a larger one stays triggered per batch."""
    import certssb.attack.triggered as triggered_module
    from certssb.dataset.batched import FloatImages

    u8 = poison(_digits(), _attack("wanet"), seed=3).x_test_triggered
    reference = torch.cat(list(u8.batches(7)))
    moved = u8.to("cpu")
    assert isinstance(moved, FloatImages) and torch.equal(moved.to_float(), reference)
    monkeypatch.setattr(triggered_module, "MATERIALISE_BYTES", 4 * reference[0].numel() * (len(u8) - 1))
    kept = u8.to("cpu")
    assert isinstance(kept, TriggeredImages) and torch.equal(torch.cat(list(kept.batches(5))), reference)


def test_poisoned_rows_stay_float_and_clean_rows_uint8():
    splits = _digits()
    u8 = poison(splits, _attack("wanet"), seed=0)
    x = u8.x_train
    assert isinstance(x, PatchedImages) and x.base is splits.x_train and u8.cross_index.numel() > 0
    changed = u8.changed_index()
    assert torch.equal(x.index, changed) and x.rows.dtype == torch.float32
    # the changed rows are the attack's exact floats (not representable as k / 16)
    assert torch.equal(x[changed], x.rows) and not torch.equal(x.rows * 16, torch.round(x.rows * 16))
    clean = torch.ones(len(x), dtype=torch.bool)
    clean[changed] = False
    clean_idx = torch.nonzero(clean).flatten()
    assert torch.equal(x[clean_idx], splits.x_train.data[clean_idx].to(torch.float32) / 16.0)
    # the realised sizes are measured against the float rows held
    assert torch.equal(realised_l2(x[u8.poisoned_index], splits.x_train[u8.poisoned_index]), u8.train_delta_l2)
    # mixed batches, [G, b] index tensors and subsets
    idx = torch.stack([changed[:3], clean_idx[:3]])
    assert torch.equal(x[idx], torch.stack([x.rows[:3], x[clean_idx[:3]]]))
    sub = x.subset(torch.cat([clean_idx[:2], changed[:2]]))
    assert isinstance(sub, PatchedImages) and torch.equal(sub.to_float(), x[torch.cat([clean_idx[:2], changed[:2]])])
    assert isinstance(x.subset(clean_idx[:4]), Uint8Images)
    assert torch.equal(x[int(changed[0])], x.rows[0]) and x.nbytes < x.to_float().numel() * 4


def test_patched_images_reject_bad_rows():
    base = Uint8Images(torch.zeros(4, 1, 2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"rows must be \[1, 1, 2, 2\]"):
        PatchedImages(base, torch.tensor([0]), torch.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match="in 0..3"):
        PatchedImages(base, torch.tensor([4]), torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match="distinct"):
        PatchedImages(base, torch.tensor([1, 1]), torch.zeros(2, 1, 2, 2))


def test_triggered_and_tiled_views():
    splits = _digits()
    u8 = poison(splits, _attack("badnets"), seed=0)
    trig, ref = u8.x_test_triggered, u8.x_test_triggered.to_float()
    grid = torch.tensor([[1, 2], [3, 4]])
    assert torch.equal(trig[5], ref[5]) and torch.equal(trig[grid], ref[grid])
    assert torch.equal(trig.subset(torch.tensor([9, 0])).to_float(), ref[[9, 0]])
    tiled = TiledImages(splits.x_test, 3)
    n = len(splits.x_test)
    assert tiled.shape == (3 * n,) + splits.input_shape and tiled.nbytes == splits.x_test.nbytes
    assert torch.equal(tiled.to_float(), splits.x_test.to_float().repeat(3, 1, 1, 1))
    assert torch.equal(tiled.subset(torch.tensor([n + 1])).to_float(), splits.x_test[[1]])


def test_table_conversion_equals_the_cpu_division():
    # what a GPU runs (uint8 data off the CPU): a table from the CPU division, identical by construction
    gen = torch.Generator().manual_seed(0)
    for scale in (255.0, 16.0, 7.0):
        images = Uint8Images(torch.randint(0, 256, (6, 3, 5, 5), dtype=torch.uint8, generator=gen), scale)
        assert torch.equal(images._by_table(images.data), images.to_float())


def test_float_tensors_still_accepted_and_bad_input_is_one_line():
    x = torch.rand(3, 1, 2, 2)
    assert torch.equal(as_images(x)[1:], x[1:])
    with pytest.raises(ConfigError, match=r"x must be images \[n, C, H, W\]"):
        as_images(torch.zeros(3, 4, dtype=torch.uint8))


def test_unpoisoned_keeps_the_clean_uint8_sets():
    splits = _digits()
    p = poison(splits, _attack("none"), seed=0)
    assert isinstance(p, PoisonedData) and p.x_train is splits.x_train and p.x_test_triggered is splits.x_test


@pytest.mark.parametrize("attack", ["badnets", "wanet"])
def test_run_certificates_equal_the_float_path(attack, run_pipeline, tmp_path, monkeypatch):
    from certssb import pipeline

    overrides = [f"attack={attack}", "ensemble.n_members=3", "ensemble.epochs=2", "undefended.epochs=1"]
    run_pipeline(tmp_path / "u8", overrides)
    loaded = pipeline.load_dataset
    monkeypatch.setattr(pipeline, "load_dataset", lambda *a, **k: _as_float(loaded(*a, **k)))
    run_pipeline(tmp_path / "float", overrides)
    for name in ("certificates.csv", "sigmas.npz"):
        assert (tmp_path / "u8" / name).read_bytes() == (tmp_path / "float" / name).read_bytes(), name
