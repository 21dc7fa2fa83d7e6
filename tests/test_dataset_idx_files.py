"""certssb.dataset: the idx reader, Fashion-MNIST and MNIST from files in their real on-disk layouts.

The tests write small idx files (28x28 images, a few samples) exactly as the datasets ship them,
raw and gzipped, in the flat layout, torchvision's ``<root>/<Class>/raw/`` layout and the layout
torchvision's MNIST class reads. Nothing is downloaded: download attempts are patched to fail.
"""

import gzip
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch

from certssb.config import load_option
import torchvision

from certssb.dataset import load_dataset, read_idx
from certssb.dataset import fashion_mnist as fashion_module
from certssb.errors import DataNotFoundError

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_bytes(array: np.ndarray) -> bytes:
    """The idx encoding of a uint8 array: 0, 0, 0x08, ndim, big-endian dims, data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def make_split(n: int, seed: int):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


def write_idx_dataset(directory: Path, gz: bool, n_train: int = 30, n_test: int = 20):
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {"train": make_split(n_train, 1), "test": make_split(n_test, 2)}
    for split, (img_stem, lbl_stem) in STEMS.items():
        images, labels = arrays[split]
        for stem, arr in ((img_stem, images), (lbl_stem, labels)):
            data = idx_bytes(arr)
            if gz:
                (directory / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (directory / stem).write_bytes(data)
    return arrays


def cfg(name, data_dir, **kw):
    return load_option("dataset", name, data_dir=str(data_dir), **kw)


def check_loaded(d, arrays):
    for split, (x, y) in (("train", (d.x_train, d.y_train)), ("test", (d.x_test, d.y_test))):
        images, labels = arrays[split]
        assert x.data.dtype == torch.uint8 and y.dtype == torch.int64  # held as uint8
        assert x.shape == (len(labels), 1, 28, 28)
        x = x.to_float()
        assert torch.equal(x, torch.from_numpy(images).float().unsqueeze(1) / 255)
        assert torch.equal(y, torch.from_numpy(labels.astype(np.int64)))


# ----------------------------------------------------------------------------- idx reader


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(tmp_path, gz):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("a.gz" if gz else "a")
    path.write_bytes(gzip.compress(idx_bytes(arr)) if gz else idx_bytes(arr))
    out = read_idx(path, ndim=3)
    assert out.dtype == np.uint8 and np.array_equal(out, arr)


def test_read_idx_other_dtype(tmp_path):
    arr = np.array([1, -2, 300], dtype=">i4")
    (tmp_path / "b").write_bytes(struct.pack(">BBBB", 0, 0, 0x0C, 1) + struct.pack(">I", 3) + arr.tobytes())
    assert read_idx(tmp_path / "b").tolist() == [1, -2, 300]


@pytest.mark.parametrize(
    "content, match",
    [
        (b"\x00\x00", "shorter than"),
        (b"\x12\x34\x08\x03" + b"\x00" * 12, "magic"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated header"),
        (struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">3I", 2, 28, 28) + b"\x00" * 100, "truncated"),
        (struct.pack(">BBBB", 0, 0, 8, 1) + struct.pack(">I", 2) + b"\x00" * 5, "trailing bytes"),
    ],
)
def test_read_idx_rejects_malformed(tmp_path, content, match):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataNotFoundError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    data = gzip.compress(idx_bytes(np.zeros((5, 28, 28), np.uint8)))
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataNotFoundError, match="gzip") as info:
        read_idx(path)
    assert "t10k-images-idx3-ubyte.gz" in str(info.value) and "\n" not in str(info.value)


def test_read_idx_wrong_ndim(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(idx_bytes(np.zeros((2, 2), np.uint8)))
    with pytest.raises(DataNotFoundError, match="dimensions"):
        read_idx(path, ndim=1)


# ----------------------------------------------------------------------------- Fashion-MNIST


@pytest.fixture
def no_system_dirs(monkeypatch):
    """Hide Debian's copy so only the test's files can be found."""
    monkeypatch.setattr(fashion_module, "SYSTEM_DIRS", ())


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_fashion_mnist_from_written_files(tmp_path, no_system_dirs, gz, layout):
    directory = tmp_path if layout == "flat" else tmp_path / "FashionMNIST" / "raw"
    arrays = write_idx_dataset(directory, gz=gz)
    d = load_dataset(cfg("fashion_mnist", tmp_path), seed=0)
    check_loaded(d, arrays)
    assert d.num_classes == 10 and d.class_names[9] == "Ankle boot"


def test_fashion_mnist_data_dir_wins_over_debian(tmp_path):
    arrays = write_idx_dataset(tmp_path, gz=True)
    d = load_dataset(cfg("fashion_mnist", tmp_path), seed=0)
    check_loaded(d, arrays)


def test_fashion_mnist_classes_and_subsample(tmp_path, no_system_dirs):
    write_idx_dataset(tmp_path, gz=False, n_train=50)
    d = load_dataset(cfg("fashion_mnist", tmp_path, classes=[7, 2]), seed=0)
    assert d.class_names == ["Sneaker", "Pullover"] and d.y_train.tolist() == [1, 0] * 5  # original order: 2 (-> 1) comes before 7 (-> 0)
    d = load_dataset(cfg("fashion_mnist", tmp_path, train_size=12), seed=3)
    assert d.x_train.shape[0] == 12


def test_fashion_mnist_absent(tmp_path, no_system_dirs):
    with pytest.raises(DataNotFoundError) as info:
        load_dataset(cfg("fashion_mnist", tmp_path), seed=0)
    msg = str(info.value)
    assert "\n" not in msg
    for stem in STEMS["train"] + STEMS["test"]:
        assert stem in msg
    assert str(tmp_path) in msg and str(tmp_path / "FashionMNIST" / "raw") in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "dataset.download=true" in msg


def test_fashion_mnist_incomplete_dir_is_absent(tmp_path, no_system_dirs):
    write_idx_dataset(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_dataset(cfg("fashion_mnist", tmp_path), seed=0)


def test_fashion_mnist_corrupted_file_named(tmp_path, no_system_dirs):
    write_idx_dataset(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataNotFoundError, match="truncated") as info:
        load_dataset(cfg("fashion_mnist", tmp_path), seed=0)
    assert str(path) in str(info.value)


def test_fashion_mnist_label_count_mismatch(tmp_path, no_system_dirs):
    write_idx_dataset(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(7, np.uint8)))
    with pytest.raises(DataNotFoundError, match="7 labels for 30 images"):
        load_dataset(cfg("fashion_mnist", tmp_path), seed=0)


def test_fashion_mnist_download_failure_is_one_line(tmp_path, no_system_dirs, monkeypatch):
    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://..., got:\n<urlopen error>")

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", offline)
    with pytest.raises(DataNotFoundError, match="downloading Fashion-MNIST") as info:
        load_dataset(cfg("fashion_mnist", tmp_path, download=True), seed=0)
    assert "\n" not in str(info.value)


@pytest.mark.skipif(not DEBIAN_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed "
                    "(/usr/share/datasets/fashion-mnist absent; apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_from_debian_package(tmp_path):
    d = load_dataset(cfg("fashion_mnist", tmp_path / "empty", classes=[0, 1], train_size=500), seed=0)
    assert d.x_train.shape == (500, 1, 28, 28) and d.x_test.shape == (2000, 1, 28, 28)
    x = d.x_train.to_float()
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert x.max() == 1.0
    assert (d.y_test == 0).sum() == 1000 and (d.y_test == 1).sum() == 1000
    assert d.class_names == ["T-shirt/top", "Trouser"]


# ----------------------------------------------------------------------------- MNIST (torchvision)


def test_mnist_through_torchvision_layout(tmp_path):
    arrays = write_idx_dataset(tmp_path / "MNIST" / "raw", gz=False)
    # the files are what torchvision itself reads
    ds = torchvision.datasets.MNIST(root=str(tmp_path), train=False, download=False)
    assert len(ds) == 20
    d = load_dataset(cfg("mnist", tmp_path), seed=0)
    check_loaded(d, arrays)
    assert d.class_names == [str(i) for i in range(10)]


def test_mnist_gzipped_raw_files(tmp_path):
    arrays = write_idx_dataset(tmp_path / "MNIST" / "raw", gz=True)
    d = load_dataset(cfg("mnist", tmp_path), seed=0)
    check_loaded(d, arrays)


def test_mnist_absent(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_dataset(cfg("mnist", tmp_path), seed=0)
    msg = str(info.value)
    assert "\n" not in msg and "MNIST/raw/train-images-idx3-ubyte" in msg and "MNIST/raw/t10k-labels-idx1-ubyte" in msg
    assert str(tmp_path) in msg and "dataset.download=true" in msg


@pytest.mark.parametrize("error", [RuntimeError("Error downloading:\nTried x\n"), URLError("no route"), OSError("dns")])
def test_mnist_download_failure_is_one_line(tmp_path, monkeypatch, error):
    def offline(self):
        raise error

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    with pytest.raises(DataNotFoundError, match="downloading MNIST") as info:
        load_dataset(cfg("mnist", tmp_path, download=True), seed=0)
    assert "\n" not in str(info.value)


def test_mnist_corrupted_file(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    write_idx_dataset(raw, gz=False)
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    with pytest.raises(DataNotFoundError, match="could not be read") as info:
        load_dataset(cfg("mnist", tmp_path), seed=0)
    assert "\n" not in str(info.value)
