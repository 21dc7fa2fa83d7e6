"""The GTSRB, CIFAR-100, SVHN, ImageNette and image-folder options: each composes, parses and loads
from small files written in the real formats (writers in test_dataset_image_sets), an image
folder runs end to end, and absent data ends the command line with one line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from certssb.config import parse_run
from certssb.dataset import load_dataset
from certssb.errors import ConfigError, DataNotFoundError
from conftest import compose_cfg
from test_dataset_image_sets import md5, trust_cifar100, write_cifar100, write_folder, write_gtsrb, write_imagenette, write_svhn

REPO = Path(__file__).resolve().parent.parent


def _svhn(root: Path, monkeypatch) -> None:
    write_svhn(root)
    folder = root / "svhn"
    split_list = {k: [url, f, md5(folder / f) if (folder / f).is_file() else m]
                  for k, (url, f, m) in torchvision.datasets.SVHN.split_list.items()}
    monkeypatch.setattr(torchvision.datasets.SVHN, "split_list", split_list)


def _cifar100(root: Path, monkeypatch) -> None:
    write_cifar100(root)
    trust_cifar100(monkeypatch, root)


# option -> (writer, overrides beyond dataset=<option>, input shape, classes in the option, n train, n test)
OPTIONS = {
    "gtsrb": (lambda r, mp: write_gtsrb(r), ["dataset.image_size=16"], (3, 16, 16), 43, 6, 3),
    "cifar100": (_cifar100, [], (3, 32, 32), 100, 7, 5),
    "svhn": (_svhn, [], (3, 32, 32), 10, 6, 4),
    "imagenette": (lambda r, mp: write_imagenette(r), ["dataset.image_size=20"], (3, 20, 20), 10, 6, 3),
    "image_folder": (lambda r, mp: write_folder(r), ["dataset.image_size=24"], (3, 24, 24), 2, 5, 4),
}


def _where(option: str, root: Path) -> str:
    return f"dataset.root={root}" if option == "image_folder" else f"dataset.data_dir={root}"


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_option_composes_parses_and_loads_what_it_declares(option, tmp_path, monkeypatch):
    write, overrides, shape, n_classes, n_train, n_test = OPTIONS[option]
    write(tmp_path, monkeypatch)
    run = parse_run(compose_cfg([f"dataset={option}", _where(option, tmp_path), *overrides]))
    ds = run.dataset
    assert ds.name == option and type(ds).__module__ == f"certssb.dataset.{option}"
    assert tuple(ds.input_shape) == shape and ds.num_classes() == n_classes == len(ds.class_names)
    expected_model = "resnet18" if option in ("imagenette", "image_folder") else "preact_resnet32"  # 224 px vs 32 px
    assert run.model.name == expected_model
    splits = load_dataset(ds, seed=0)  # load_dataset rejects images whose shape differs from input_shape
    assert splits.input_shape == shape and splits.num_classes == n_classes
    assert (len(splits.y_train), len(splits.y_test)) == (n_train, n_test)
    x = splits.x_train.to_float()
    assert splits.x_train.data.dtype == torch.uint8 and 0.0 <= float(x.min()) <= float(x.max()) <= 1.0


def test_class_selection_relabels_in_the_given_order(tmp_path, monkeypatch):
    write_gtsrb(tmp_path)  # training classes 0, 14, 42 (two images each)
    run = parse_run(compose_cfg(["dataset=gtsrb", _where("gtsrb", tmp_path), "dataset.classes=[42,0]",
                                 "dataset.image_size=16"]))
    assert run.dataset.num_classes() == 2
    splits = load_dataset(run.dataset, seed=0)
    assert splits.class_names == ["End of no passing by vehicles over 3.5 metric tons", "Speed limit (20km/h)"]
    assert sorted(splits.y_train.tolist()) == [0, 0, 1, 1]


def test_image_folder_classes_come_from_the_folder(tmp_path):
    write_folder(tmp_path)
    (tmp_path / "train" / "emu").mkdir()  # a third class in train only
    with pytest.raises(DataNotFoundError, match=r"both splits need the same class subfolders") as info:
        parse_run(compose_cfg(["dataset=image_folder", _where("image_folder", tmp_path)]))
    assert "\n" not in str(info.value)
    (tmp_path / "train" / "emu").rmdir()
    run = parse_run(compose_cfg(["dataset=image_folder", _where("image_folder", tmp_path), "dataset.classes=[1,0]"]))
    assert run.dataset.class_names == ("cat", "dog") and run.dataset.input_shape == (3, 224, 224)
    with pytest.raises(ConfigError, match=r"^attack.target must be a class index in \[0, 1\]"):
        parse_run(compose_cfg(["dataset=image_folder", _where("image_folder", tmp_path), "attack.target=2"]))


@pytest.mark.parametrize("overrides, error, message", [
    ([], ConfigError, r"^dataset.root must be set to a folder with train/<class>/ and test/<class>/ subfolders$"),
    (["dataset.root=/nonexistent/dogs_vs_cats"], DataNotFoundError, r"^dataset.root='/nonexistent/dogs_vs_cats' is not a directory"),
    (["dataset.image_size=4"], ConfigError, r"^dataset.image_size must be an integer >= 8; got 4$"),
    (["dataset.resize_mode=crop"], ConfigError, r"^dataset.resize_mode must be one of squash, center_crop; got 'crop'$"),
])
def test_image_folder_bad_settings_are_one_line(overrides, error, message):
    with pytest.raises(error, match=message):
        parse_run(compose_cfg(["dataset=image_folder", *overrides]))


@pytest.mark.parametrize("option, overrides, message", [
    ("imagenette", ["dataset.variant=64px"], r"^dataset.variant must be one of full, 320px, 160px; got '64px'$"),
    ("gtsrb", ["dataset.image_size=7"], r"^dataset.image_size must be an integer >= 8; got 7$"),
    ("gtsrb", ["dataset.classes=[0,43]"], r"^dataset.classes contains 43, not a class of gtsrb: use ids in 0..42$"),
    ("cifar100", ["dataset.classes=[5]"], r"^dataset.classes must list at least two classes"),
])
def test_bad_settings_fail_at_parse_time(option, overrides, message):
    with pytest.raises(ConfigError, match=message):
        parse_run(compose_cfg([f"dataset={option}", *overrides]))


def _dogs_vs_cats(root: Path, n_train: int = 8, n_test: int = 3) -> None:
    """Two classes of noisy PNGs of different sizes: reddish cats, bluish dogs."""
    rng = np.random.default_rng(1)
    for split, n in (("train", n_train), ("test", n_test)):
        for name, base in (("cat", (190, 40, 40)), ("dog", (40, 40, 190))):
            d = root / split / name
            d.mkdir(parents=True)
            for k in range(n):
                h, w = 14 + k % 3, 18 + k % 4
                pixels = np.clip(np.array(base) + rng.normal(0, 25, size=(h, w, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(d / f"{name}.{k}.png")


def test_image_folder_runs_end_to_end(tmp_path, run_pipeline):
    _dogs_vs_cats(tmp_path / "data")
    summary = run_pipeline(tmp_path / "out", ["dataset=image_folder", f"dataset.root={tmp_path / 'data'}",
                                              "dataset.image_size=12", "model=mlp", "undefended.enabled=false",
                                              "ensemble.n_members=3", "ensemble.epochs=2"])
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert on_disk["status"] == "complete"
    assert on_disk["dataset"] == {"name": "image_folder", "n_train": 16, "n_test": 6, "num_classes": 2,
                                  "class_names": ["cat", "dog"]}
    acc = summary["metrics"]["clean"]["accuracy"]
    assert 0.0 <= acc <= 1.0 and summary["metrics"]["clean"]["acr"] >= 0.0
    assert len(summary["curves"]["clean"]["radii"]) == len(summary["curves"]["clean"]["certified_accuracy"]["joint"])


@pytest.mark.slow  # two fresh interpreters (Hydra, torch): 15-25 s on a loaded 2-core machine
@pytest.mark.parametrize("overrides, message", [
    (["dataset=svhn"], r"^error: SVHN not found: .*svhn lacks train_32x32.mat, test_32x32.mat: set dataset.download=true"),
    (["dataset=image_folder"], r"^error: dataset.root must be set"),
])
def test_command_line_without_data_is_one_line(tmp_path, overrides, message):
    env = {**os.environ, "WANDB_MODE": "disabled", "CERTSSB_DATA_DIR": str(tmp_path / "empty"),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "certssb.run", *overrides, "logger=none",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(message, lines[0]), proc.stderr[-2000:]
