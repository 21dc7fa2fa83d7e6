"""MNIST through ``torchvision.datasets.MNIST`` (files under ``<data_dir>/MNIST/raw/``).

torchvision reads the extracted idx files; if only the ``.gz`` files are there (a manual
download) they are read directly. ``dataset.download=true`` lets torchvision fetch them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pathlib import Path
from urllib.error import URLError

import torch

from certssb.errors import DataNotFoundError, one_line

from .settings import FileDatasetSettings
from .idx import IDX_FILES, find_idx_dir, find_idx_file, load_idx_split
from .splits import RawSplits

ALL_STEMS = IDX_FILES["train"] + IDX_FILES["test"]


def _missing_message(root: Path) -> str:
    raw = root / "MNIST" / "raw"
    return (
        f"MNIST not found: expected {', '.join('MNIST/raw/' + s for s in ALL_STEMS)} under {root} "
        f"(looked in {raw}): set dataset.download=true on a machine with a network, "
        "or set dataset.data_dir to a folder holding MNIST/raw/"
    )


def load_mnist_raw(cfg) -> RawSplits:
    import torchvision

    root = cfg.root()
    raw = root / "MNIST" / "raw"
    download = cfg.download
    extracted = all((raw / stem).is_file() for stem in ALL_STEMS)
    if not extracted and not download and find_idx_dir([raw], ALL_STEMS) is not None:
        # gzipped files only (torchvision wants them extracted): read them ourselves
        (x_tr, y_tr), (x_te, y_te) = (load_idx_split(raw, s, image_hw=(28, 28), num_classes=10) for s in ("train", "test"))
        return RawSplits(torch.from_numpy(x_tr).unsqueeze(1), torch.from_numpy(y_tr),
                         torch.from_numpy(x_te).unsqueeze(1), torch.from_numpy(y_te), scale=255.0)
    if not extracted and not download:
        raise DataNotFoundError(_missing_message(root))
    try:
        train = torchvision.datasets.MNIST(root=str(root), train=True, download=download)
        test = torchvision.datasets.MNIST(root=str(root), train=False, download=download)
    except (URLError, OSError, RuntimeError) as exc:
        if download and not all(find_idx_file(raw, s) for s in ALL_STEMS):
            raise DataNotFoundError(
                f"downloading MNIST into {raw} failed ({one_line(exc)}): check the network, "
                f"or place {', '.join(ALL_STEMS)} in {raw}"
            ) from exc
        raise DataNotFoundError(f"MNIST files in {raw} could not be read ({one_line(exc)}): delete them and download again") from exc
    except (AssertionError, ValueError) as exc:
        raise DataNotFoundError(f"MNIST files in {raw} could not be read ({one_line(exc)}): delete them and download again") from exc

    def images(ds) -> torch.Tensor:
        return ds.data.to(torch.uint8).unsqueeze(1)

    def labels(ds) -> torch.Tensor:
        return torch.as_tensor(ds.targets, dtype=torch.int64)

    return RawSplits(images(train), labels(train), images(test), labels(test), scale=255.0)


@dataclass
class MNISTSettings(FileDatasetSettings):
    input_shape: ClassVar[tuple[int, int, int]] = (1, 28, 28)
    class_names: ClassVar[tuple[str, ...]] = tuple(tuple(str(i) for i in range(10)))

    def load_raw(self) -> RawSplits:
        return load_mnist_raw(self)
