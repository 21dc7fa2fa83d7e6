"""Fashion-MNIST from idx files: ``data_dir``, then Debian's package, then torchvision's download.

Searched in order: ``<data_dir>/``, ``<data_dir>/FashionMNIST/raw/`` (torchvision's layout) and
``/usr/share/datasets/fashion-mnist/`` (``apt-get install dataset-fashion-mnist``). Each directory
must hold all four files, raw or gzipped. With ``dataset.download=true`` and nothing found,
torchvision downloads into ``<data_dir>/FashionMNIST/raw/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch

from certssb.errors import DataNotFoundError, one_line

from .settings import FileDatasetSettings
from .idx import IDX_FILES, find_idx_dir, load_idx_split
from .splits import RawSplits

FASHION_MNIST_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]

#: system-wide locations (Debian's dataset-fashion-mnist package)
SYSTEM_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets/fashion-mnist"),)
ALL_STEMS = IDX_FILES["train"] + IDX_FILES["test"]


def candidate_dirs(data_dir: Path) -> list[Path]:
    return [data_dir, data_dir / "FashionMNIST" / "raw", *SYSTEM_DIRS]


def _download(data_dir: Path) -> None:
    import torchvision

    try:
        torchvision.datasets.FashionMNIST(root=str(data_dir), train=True, download=True)
    except (URLError, OSError, RuntimeError) as exc:
        raise DataNotFoundError(
            f"downloading Fashion-MNIST into {data_dir / 'FashionMNIST' / 'raw'} failed ({one_line(exc)}): "
            "check the network, or run apt-get install dataset-fashion-mnist, or place the idx files there"
        ) from exc


def load_fashion_mnist_raw(cfg) -> RawSplits:
    data_dir = cfg.root()
    dirs = candidate_dirs(data_dir)
    directory = find_idx_dir(dirs, ALL_STEMS)
    if directory is None and cfg.download:
        _download(data_dir)
        directory = find_idx_dir(dirs, ALL_STEMS)
    if directory is None:
        raise DataNotFoundError(
            f"Fashion-MNIST not found: expected {', '.join(ALL_STEMS)} (raw or .gz) in one of "
            f"{', '.join(str(d) for d in dirs)}: run apt-get install dataset-fashion-mnist, "
            "or set dataset.download=true, or set dataset.data_dir to a folder holding them"
        )
    parts = [load_idx_split(directory, split, image_hw=(28, 28), num_classes=10) for split in ("train", "test")]
    (x_tr, y_tr), (x_te, y_te) = parts

    def images(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).unsqueeze(1)

    return RawSplits(images(x_tr), torch.from_numpy(y_tr), images(x_te), torch.from_numpy(y_te), scale=255.0)


@dataclass
class FashionMNISTSettings(FileDatasetSettings):
    input_shape: ClassVar[tuple[int, int, int]] = (1, 28, 28)
    class_names: ClassVar[tuple[str, ...]] = tuple(FASHION_MNIST_NAMES)

    def load_raw(self) -> RawSplits:
        return load_fashion_mnist_raw(self)
