"""certssb.dataset: GTSRB, CIFAR-100, SVHN, ImageNette and image folders, read from small files
each test writes in the real on-disk format (torchvision's readers, md5 tables pointed at the
written files with monkeypatch), plus the one-line errors for absent or broken data."""

from __future__ import annotations

import csv
import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import torchvision
from PIL import Image

from certssb.dataset.cifar100 import CIFAR100_NAMES, load_cifar100_raw
from certssb.dataset.gtsrb import load_gtsrb_raw
from certssb.dataset.image_folder import image_folder_info, load_image_folder_raw
from certssb.dataset.imagenette import IMAGENETTE_NAMES, load_imagenette_raw
from certssb.dataset.svhn import load_svhn_raw
from certssb.errors import ConfigError, DataNotFoundError

RNG = np.random.default_rng(0)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def solid(colour, size) -> Image.Image:
    return Image.new("RGB", size, tuple(int(c) for c in colour))


# ----------------------------------------------------------------------------- CIFAR-100
def write_cifar100(root: Path, n_train=7, n_test=5):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    out = {}
    for name, n in (("train", n_train), ("test", n_test)):
        data = RNG.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        fine = [int(v) for v in RNG.integers(0, 100, size=n)]
        entry = {"filenames": [f"{name}_{i}.png" for i in range(n)], "batch_label": name,
                 "fine_labels": fine, "coarse_labels": [f // 5 for f in fine], "data": data}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
        out[name] = (data, fine)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": CIFAR100_NAMES, "coarse_label_names": [str(i) for i in range(20)]}, f)
    return out


def trust_cifar100(monkeypatch, root: Path):
    folder, cls = root / "cifar-100-python", torchvision.datasets.CIFAR100
    monkeypatch.setattr(cls, "train_list", [["train", md5(folder / "train")]])
    monkeypatch.setattr(cls, "test_list", [["test", md5(folder / "test")]])
    monkeypatch.setattr(cls, "meta", {"filename": "meta", "key": "fine_label_names", "md5": md5(folder / "meta")})


def test_cifar100_reads_pickled_batches_in_chw_order(tmp_path, monkeypatch):
    written = write_cifar100(tmp_path)
    trust_cifar100(monkeypatch, tmp_path)
    raw = load_cifar100_raw(tmp_path)
    assert raw.x_train.shape == (7, 3, 32, 32) and raw.x_test.shape == (5, 3, 32, 32)
    assert raw.x_train.dtype == torch.uint8 and raw.scale == 255.0
    data, fine = written["train"]
    # the file stores each image as R plane, G plane, B plane (1024 bytes each)
    assert torch.equal(raw.x_train, torch.from_numpy(data.reshape(7, 3, 32, 32)))
    assert raw.y_train.tolist() == fine and raw.y_test.tolist() == written["test"][1]


def test_cifar100_absent_and_corrupted(tmp_path, monkeypatch):
    with pytest.raises(DataNotFoundError, match=r"CIFAR-100 not found: .* lacks train, test, meta: set dataset.download=true"):
        load_cifar100_raw(tmp_path)
    write_cifar100(tmp_path)  # md5s of the official release do not match the written files
    with pytest.raises(DataNotFoundError, match="corrupted or incomplete"):
        load_cifar100_raw(tmp_path)


# ----------------------------------------------------------------------------- SVHN
def write_svhn(root: Path, n_train=6, n_test=4):
    folder = root / "svhn"
    folder.mkdir(parents=True)
    out = {}
    for name, n in (("train_32x32.mat", n_train), ("test_32x32.mat", n_test)):
        x = RNG.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)  # the files' [H, W, C, n] order
        y = np.arange(1, n + 1, dtype=np.uint8).reshape(n, 1)  # labels 1..10, 10 meaning digit 0
        y[-1, 0] = 10
        scipy.io.savemat(folder / name, {"X": x, "y": y})
        out[name] = (x, y)
    return out


def test_svhn_reads_mat_files_and_maps_ten_to_zero(tmp_path, monkeypatch):
    written = write_svhn(tmp_path)
    folder = tmp_path / "svhn"
    split_list = {k: [url, f, md5(folder / f) if (folder / f).is_file() else m]
                  for k, (url, f, m) in torchvision.datasets.SVHN.split_list.items()}
    monkeypatch.setattr(torchvision.datasets.SVHN, "split_list", split_list)
    raw = load_svhn_raw(tmp_path)
    x, y = written["train_32x32.mat"]
    assert raw.x_train.shape == (6, 3, 32, 32) and raw.x_train.dtype == torch.uint8
    assert torch.equal(raw.x_train[2], torch.from_numpy(x[:, :, :, 2]).permute(2, 0, 1))
    assert raw.y_train.tolist() == [1, 2, 3, 4, 5, 0]
    assert raw.x_test.shape == (4, 3, 32, 32) and raw.y_test.tolist() == [1, 2, 3, 0]


def test_svhn_absent_and_not_the_release(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"SVHN not found: .* lacks train_32x32.mat, test_32x32.mat"):
        load_svhn_raw(tmp_path)
    write_svhn(tmp_path)
    with pytest.raises(DataNotFoundError, match="corrupted or not the official release"):
        load_svhn_raw(tmp_path)


# ----------------------------------------------------------------------------- GTSRB
def write_gtsrb(root: Path):
    """torchvision's layout: Training/<class>/*.ppm, Final_Test/Images/*.ppm + GT-final_test.csv."""
    base = root / "gtsrb"
    train_colours = {0: (255, 0, 0), 14: (0, 255, 0), 42: (0, 0, 255)}
    for cls, colour in train_colours.items():
        d = base / "GTSRB" / "Training" / f"{cls:05d}"
        d.mkdir(parents=True)
        for k, size in enumerate([(30, 31), (47, 40)]):
            solid(colour, size).save(d / f"00000_{k:05d}.ppm")
        (d / f"GT-{cls:05d}.csv").write_text("Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n")
    test_dir = base / "GTSRB" / "Final_Test" / "Images"
    test_dir.mkdir(parents=True)
    test_labels = [14, 0, 42]
    with open(base / "GT-final_test.csv", "w", newline="") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"])
        for i, cls in enumerate(test_labels):
            solid(train_colours[cls], (25 + i, 33)).save(test_dir / f"{i:05d}.ppm")
            w.writerow([f"{i:05d}.ppm", 25 + i, 33, 5, 5, 20, 28, cls])
    return train_colours, test_labels


def test_gtsrb_reads_folders_and_csv_and_resizes(tmp_path):
    colours, test_labels = write_gtsrb(tmp_path)
    raw = load_gtsrb_raw(tmp_path, image_size=32)
    assert raw.x_train.shape == (6, 3, 32, 32) and raw.x_train.dtype == torch.uint8
    assert sorted(raw.y_train.tolist()) == [0, 0, 14, 14, 42, 42]
    for img, label in zip(raw.x_train, raw.y_train.tolist()):
        assert img[:, 16, 16].tolist() == list(colours[label])  # solid colour survives the resize
    assert raw.y_test.tolist() == test_labels  # labels from the CSV, in its order
    assert raw.x_test[0, :, 3, 3].tolist() == list(colours[14])
    assert load_gtsrb_raw(tmp_path, image_size=16).x_test.shape == (3, 3, 16, 16)


def test_gtsrb_absent_and_bad_knobs(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"GTSRB not found: .*gtsrb lacks GTSRB/Training"):
        load_gtsrb_raw(tmp_path)
    with pytest.raises(ConfigError, match=r"^dataset.image_size must be an integer >= 8; got 4$"):
        load_gtsrb_raw(tmp_path, image_size=4)
    with pytest.raises(ConfigError, match=r"^dataset.resize_mode must be one of squash, center_crop; got 'x'$"):
        load_gtsrb_raw(tmp_path, resize_mode="x")


# ----------------------------------------------------------------------------- ImageNette
WNIDS = ["n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
         "n03394916", "n03417042", "n03425413", "n03445777", "n03888257"]


def write_imagenette(root: Path, folder="imagenette2-320", classes=(0, 3, 9)):
    for split, n in (("train", 2), ("val", 1)):
        for c in classes:
            d = root / folder / split / WNIDS[c]
            d.mkdir(parents=True)
            for k in range(n):
                # a wide image: left half black, right half white; JPEG like the release
                img = Image.new("RGB", (60 + 10 * k, 40), (0, 0, 0))
                img.paste((255, 255, 255), (30 + 5 * k, 0, 60 + 10 * k, 40))
                img.save(d / f"{WNIDS[c]}_{k}.JPEG", quality=95)


def test_imagenette_reads_wnid_folders_with_centre_crop(tmp_path):
    write_imagenette(tmp_path)
    raw = load_imagenette_raw(tmp_path, variant="320px", image_size=20)
    assert raw.x_train.shape == (6, 3, 20, 20) and raw.x_test.shape == (3, 3, 20, 20)
    # labels are the wnid's place among all ten, also when only 3 folders are present
    assert raw.y_train.tolist() == [0, 0, 3, 3, 9, 9] and raw.y_test.tolist() == [0, 3, 9]
    img = raw.x_train[0].to(torch.int64)
    # centre crop of a 60x40 image resized to 30x20 keeps x in [5, 25): the black/white edge at 10
    assert img[:, 10, 2].max() < 30 and img[:, 10, 17].min() > 225
    assert len(IMAGENETTE_NAMES) == 10


def test_imagenette_absent_and_unknown_variant(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"ImageNette not found: .*imagenette2-160 lacks train/, val/"):
        load_imagenette_raw(tmp_path, variant="160px")
    with pytest.raises(ConfigError, match=r"^dataset.variant must be one of full, 320px, 160px; got '64px'$"):
        load_imagenette_raw(tmp_path, variant="64px")


# ----------------------------------------------------------------------------- image folder
def write_folder(root: Path, test_name="test", sizes=((50, 40), (40, 64))):
    colours = {"cat": (200, 10, 10), "dog": (10, 10, 200)}
    for split in ("train", test_name):
        for name, colour in colours.items():
            d = root / split / name
            d.mkdir(parents=True)
            for k, size in enumerate(sizes):
                solid(colour, size).save(d / f"{name}.{k}.png")
    Image.new("L", (30, 30), 128).save(root / "train" / "dog" / "grey.png")  # grayscale -> RGB
    return colours


def test_image_folder_dogs_vs_cats_pngs(tmp_path):
    colours = write_folder(tmp_path)
    assert image_folder_info(tmp_path, 24) == ((3, 24, 24), 2, ["cat", "dog"])
    raw = load_image_folder_raw(tmp_path, image_size=24)
    assert raw.x_train.shape == (5, 3, 24, 24) and raw.x_test.shape == (4, 3, 24, 24)
    assert raw.x_train.dtype == torch.uint8 and raw.scale == 255.0
    assert raw.y_train.tolist() == [0, 0, 1, 1, 1] and raw.y_test.tolist() == [0, 0, 1, 1]
    assert raw.x_train[0, :, 12, 12].tolist() == list(colours["cat"])
    assert raw.x_train[4, :, 0, 0].tolist() == [128, 128, 128]  # grey.png (L mode) sorts last in dog/


def test_image_folder_val_split_and_squash(tmp_path):
    write_folder(tmp_path, test_name="val")
    raw = load_image_folder_raw(tmp_path, image_size=16, resize_mode="squash")
    assert raw.x_test.shape == (4, 3, 16, 16)


@pytest.mark.parametrize("make, message", [
    (lambda r: None, r"is not a directory"),
    (lambda r: (r / "train" / "a").mkdir(parents=True), r"lacks test/ \(or val/\)"),
    (lambda r: [(r / s / c).mkdir(parents=True) for s in ("train", "test") for c in ("a",)], r"1 class subfolder"),
    (lambda r: [(r / s / c).mkdir(parents=True) for s, c in (("train", "a"), ("train", "b"), ("test", "a"),
                                                              ("test", "c"))], r"both splits need the same"),
    (lambda r: [(r / s / c).mkdir(parents=True) for s in ("train", "test") for c in ("a", "b")],
     r"image folder .*train: .*[Ff]ound no valid file"),
])
def test_image_folder_errors_are_one_line(tmp_path, make, message):
    root = tmp_path / "data"
    if make(root) is None and not root.exists() and "not a directory" not in message:
        root.mkdir()
    with pytest.raises(DataNotFoundError, match=message) as info:
        load_image_folder_raw(root, image_size=16)
    assert "\n" not in str(info.value)


def test_image_folder_unreadable_image_and_unset_root(tmp_path):
    write_folder(tmp_path)
    (tmp_path / "test" / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataNotFoundError, match="an image cannot be read"):
        load_image_folder_raw(tmp_path, image_size=16)
    with pytest.raises(ConfigError, match="^dataset.root must be set"):
        load_image_folder_raw(None)
