"""CIFAR-100 through ``torchvision.datasets.CIFAR100`` (``<data_dir>/cifar-100-python/``).

The 100 fine labels (``fine_labels``; class names from ``meta``'s ``fine_label_names``).
torchvision verifies each file's md5, so a partial or corrupted folder is reported as such.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import ClassVar
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch

from certssb.errors import DataNotFoundError, one_line

from .settings import FileDatasetSettings
from .splits import RawSplits

CIFAR100_NAMES = """
apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel
can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur
dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion
lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree
pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea
seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table
tank telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman
worm
""".split()

BASE_FOLDER = "cifar-100-python"
FILES = ["train", "test", "meta"]


def _missing(root: Path) -> list[str]:
    return [name for name in FILES if not (root / BASE_FOLDER / name).is_file()]


def load_cifar100_raw(data_dir: Path, download: bool = False) -> RawSplits:
    """CIFAR-100 as uint8 ``[n, 3, 32, 32]`` (50,000 train, 10,000 test), labels 0..99.

    Knobs (defaults; Krizhevsky 2009, as BackdoorBench uses it): ``data_dir`` (null =
    ``$CERTSSB_DATA_DIR`` or ``~/.cache/certssb/data``), ``download: false``; the shared
    ``classes: null``, ``train_size: null``, ``test_size: null``.
    Checks: ``dataset.download must be true or false``. Absent files raise a one-line
    DataNotFoundError saying how to get them.
    """
    import torchvision

    root = Path(data_dir)
    folder = root / BASE_FOLDER
    missing = _missing(root)
    if missing and not download:
        raise DataNotFoundError(
            f"CIFAR-100 not found: {folder} lacks {', '.join(missing)}: set dataset.download=true on a "
            "machine with a network, or set dataset.data_dir to a folder holding cifar-100-python/"
        )
    try:
        train = torchvision.datasets.CIFAR100(root=str(root), train=True, download=download)
        test = torchvision.datasets.CIFAR100(root=str(root), train=False, download=False)
    except (URLError, OSError, RuntimeError, pickle.UnpicklingError, EOFError, KeyError, ValueError) as exc:
        if download and _missing(root):
            raise DataNotFoundError(
                f"downloading CIFAR-100 into {root} failed ({one_line(exc)}): check the network, "
                f"or extract cifar-100-python.tar.gz into {root}"
            ) from exc
        raise DataNotFoundError(
            f"CIFAR-100 files in {folder} are corrupted or incomplete ({one_line(exc)}): "
            "delete the folder and set dataset.download=true"
        ) from exc

    def images(ds) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(ds.data, dtype=np.uint8)).permute(0, 3, 1, 2).contiguous()

    def labels(ds) -> torch.Tensor:
        return torch.as_tensor(ds.targets, dtype=torch.int64)

    return RawSplits(images(train), labels(train), images(test), labels(test), scale=255.0)


@dataclass
class CIFAR100Settings(FileDatasetSettings):
    """``dataset=cifar100``: the 100 fine classes, 32 x 32."""

    input_shape: ClassVar[tuple[int, int, int]] = (3, 32, 32)
    class_names: ClassVar[tuple[str, ...]] = tuple(CIFAR100_NAMES)

    def load_raw(self) -> RawSplits:
        return load_cifar100_raw(self.root(), self.download)
