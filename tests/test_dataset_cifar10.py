"""certssb.dataset: CIFAR-10 through torchvision, from small batches written in the real python format.

torchvision's CIFAR10 verifies each batch file against the md5 of the official release; the
tests write their own small batches (``cifar-10-batches-py/data_batch_1..5``, ``test_batch``,
``batches.meta``: pickled dicts with ``data`` uint8 [n, 3072] in CHW order and ``labels``) and
point torchvision's md5 table at them with monkeypatch. Nothing is downloaded.
"""

import hashlib
import pickle
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch

from certssb.config import load_option
import torchvision

from certssb.dataset import load_dataset
from certssb.errors import DataNotFoundError

CIFAR = torchvision.datasets.CIFAR10
NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar(root: Path, per_batch: int = 6, n_test: int = 8):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        n = n_test if name == "test_batch" else per_batch
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in (np.arange(n) + i) % 10]
        entry = {"batch_label": f"{name} of 6", "labels": labels, "data": data,
                 "filenames": [f"img_{i}_{j}.png" for j in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
        batches[name] = (data, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"num_cases_per_batch": per_batch, "label_names": NAMES, "num_vis": 3072}, f, protocol=2)
    return batches


@pytest.fixture
def trust_written_files(monkeypatch, tmp_path):
    """Point torchvision's md5 table at the files this test writes."""

    def apply(root: Path):
        folder = root / "cifar-10-batches-py"
        monkeypatch.setattr(CIFAR, "train_list", [[f"data_batch_{k}", md5(folder / f"data_batch_{k}")] for k in range(1, 6)])
        monkeypatch.setattr(CIFAR, "test_list", [["test_batch", md5(folder / "test_batch")]])
        monkeypatch.setattr(CIFAR, "meta", {"filename": "batches.meta", "key": "label_names",
                                            "md5": md5(folder / "batches.meta")})

    return apply


def cfg(root, **kw):
    return load_option("dataset", "cifar10", data_dir=str(root), **kw)


def as_images(data: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(data.reshape(-1, 3, 32, 32)).float() / 255


def test_cifar10_loads_written_batches(tmp_path, trust_written_files):
    batches = write_cifar(tmp_path)
    trust_written_files(tmp_path)
    d = load_dataset(cfg(tmp_path), seed=0)
    assert d.x_train.shape == (30, 3, 32, 32) and d.x_test.shape == (8, 3, 32, 32)
    assert d.x_train.data.dtype == torch.uint8 and d.y_train.dtype == torch.int64  # held as uint8
    d = d.to_float()
    train_x = torch.cat([as_images(batches[f"data_batch_{k}"][0]) for k in range(1, 6)])
    train_y = sum((batches[f"data_batch_{k}"][1] for k in range(1, 6)), [])
    assert torch.equal(d.x_train, train_x)  # channel-first layout preserved exactly
    assert d.y_train.tolist() == train_y
    assert torch.equal(d.x_test, as_images(batches["test_batch"][0]))
    assert d.class_names == NAMES and d.num_classes == 10


def test_cifar10_airplane_vs_bird(tmp_path, trust_written_files):
    write_cifar(tmp_path)
    trust_written_files(tmp_path)
    d = load_dataset(cfg(tmp_path, classes=[0, 2]), seed=0)
    assert d.class_names == ["airplane", "bird"] and set(d.y_train.tolist()) <= {0, 1}
    assert (d.y_train == 1).sum() > 0


def test_cifar10_absent_lists_files(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_dataset(cfg(tmp_path), seed=0)
    msg = str(info.value)
    assert "\n" not in msg and str(tmp_path / "cifar-10-batches-py") in msg
    for name in ["data_batch_1", "data_batch_5", "test_batch"]:
        assert name in msg
    assert "dataset.download=true" in msg


def test_cifar10_partial_folder_names_missing_files(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataNotFoundError, match="lacks data_batch_3"):
        load_dataset(cfg(tmp_path), seed=0)


def test_cifar10_md5_mismatch_is_corrupted(tmp_path):
    write_cifar(tmp_path)  # real torchvision md5 table: these small files fail it
    with pytest.raises(DataNotFoundError, match="corrupted or incomplete") as info:
        load_dataset(cfg(tmp_path), seed=0)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("error", [URLError("no route to host"), OSError("Name or service not known"),
                                   RuntimeError("File not found or corrupted.")])
def test_cifar10_download_failure_is_one_line(tmp_path, monkeypatch, error):
    def offline(self):
        raise error

    monkeypatch.setattr(CIFAR, "download", offline)
    with pytest.raises(DataNotFoundError, match="downloading CIFAR-10") as info:
        load_dataset(cfg(tmp_path, download=True), seed=0)
    assert "\n" not in str(info.value)
