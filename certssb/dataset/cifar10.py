"""CIFAR-10 through ``torchvision.datasets.CIFAR10`` (``<data_dir>/cifar-10-batches-py/``).

torchvision verifies every batch file's md5; a partial or corrupted folder is reported as such.
Images are returned as ``[n, 3, 32, 32]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pickle
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch

from certssb.errors import DataNotFoundError, one_line

from .settings import FileDatasetSettings
from .splits import RawSplits

CIFAR10_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]

BASE_FOLDER = "cifar-10-batches-py"
BATCH_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


def _missing(root: Path) -> list[str]:
    return [name for name in BATCH_FILES if not (root / BASE_FOLDER / name).is_file()]


def load_cifar10_raw(cfg) -> RawSplits:
    import torchvision

    root = cfg.root()
    folder = root / BASE_FOLDER
    download = cfg.download
    missing = _missing(root)
    if missing and not download:
        raise DataNotFoundError(
            f"CIFAR-10 not found: {folder} lacks {', '.join(missing)} (expected "
            f"{BASE_FOLDER}/data_batch_1..5, test_batch, batches.meta): set dataset.download=true "
            "on a machine with a network, or set dataset.data_dir to a folder holding cifar-10-batches-py/"
        )
    try:
        train = torchvision.datasets.CIFAR10(root=str(root), train=True, download=download)
        test = torchvision.datasets.CIFAR10(root=str(root), train=False, download=False)
    except (URLError, OSError, RuntimeError, pickle.UnpicklingError, EOFError, KeyError, ValueError) as exc:
        if download and _missing(root):
            raise DataNotFoundError(
                f"downloading CIFAR-10 into {root} failed ({one_line(exc)}): check the network, "
                f"or extract cifar-10-python.tar.gz into {root}"
            ) from exc
        raise DataNotFoundError(
            f"CIFAR-10 files in {folder} are corrupted or incomplete ({one_line(exc)}): "
            "delete the folder and set dataset.download=true"
        ) from exc

    def images(ds) -> torch.Tensor:
        data = np.ascontiguousarray(ds.data, dtype=np.uint8)  # [n, 32, 32, 3]
        return torch.from_numpy(data).permute(0, 3, 1, 2).contiguous()

    def labels(ds) -> torch.Tensor:
        return torch.as_tensor(ds.targets, dtype=torch.int64)

    return RawSplits(images(train), labels(train), images(test), labels(test), scale=255.0)


@dataclass
class CIFAR10Settings(FileDatasetSettings):
    input_shape: ClassVar[tuple[int, int, int]] = (3, 32, 32)
    class_names: ClassVar[tuple[str, ...]] = tuple(CIFAR10_NAMES)

    def load_raw(self) -> RawSplits:
        return load_cifar10_raw(self)
