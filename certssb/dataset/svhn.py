"""SVHN (cropped digits) through ``torchvision.datasets.SVHN`` (``<data_dir>/svhn/{train,test}_32x32.mat``).

torchvision maps the files' label 10 to digit 0 and verifies each file's md5.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.error import URLError

import numpy as np
import torch

from certssb.errors import DataNotFoundError, one_line

from .settings import FileDatasetSettings
from .splits import RawSplits

SUBFOLDER = "svhn"
FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def load_svhn_raw(data_dir: Path, download: bool = False) -> RawSplits:
    """SVHN as uint8 ``[n, 3, 32, 32]`` (73,257 train, 26,032 test; ``extra`` unused), labels 0..9.

    Knobs (defaults; Netzer et al. 2011, the ``train``/``test`` splits BackdoorBench uses):
    ``data_dir`` (null = ``$CERTSSB_DATA_DIR`` or ``~/.cache/certssb/data``; files under
    ``<data_dir>/svhn/``), ``download: false``; the shared ``classes``, ``train_size``,
    ``test_size`` (null). Checks: ``dataset.download must be true or false``.
    """
    import torchvision

    root = Path(data_dir) / SUBFOLDER
    missing = [f for f in FILES.values() if not (root / f).is_file()]
    if missing and not download:
        raise DataNotFoundError(
            f"SVHN not found: {root} lacks {', '.join(missing)}: set dataset.download=true on a machine "
            "with a network, or set dataset.data_dir to a folder holding svhn/train_32x32.mat and test_32x32.mat"
        )
    splits = {}
    for split in ("train", "test"):
        try:
            ds = torchvision.datasets.SVHN(root=str(root), split=split, download=download)
        except (URLError, OSError, RuntimeError, ValueError, KeyError) as exc:
            if download and not (root / FILES[split]).is_file():
                raise DataNotFoundError(
                    f"downloading SVHN into {root} failed ({one_line(exc)}): check the network, "
                    f"or place {FILES[split]} there"
                ) from exc
            raise DataNotFoundError(
                f"SVHN file {root / FILES[split]} is corrupted or not the official release ({one_line(exc)}): "
                "delete it and set dataset.download=true"
            ) from exc
        images = torch.from_numpy(np.ascontiguousarray(ds.data, dtype=np.uint8))  # [n, 3, 32, 32]
        splits[split] = (images, torch.as_tensor(ds.labels, dtype=torch.int64))
    (x_tr, y_tr), (x_te, y_te) = splits["train"], splits["test"]
    return RawSplits(x_tr, y_tr, x_te, y_te, scale=255.0)


@dataclass
class SVHNSettings(FileDatasetSettings):
    """``dataset=svhn``: house-number digits 0..9, 32 x 32."""

    input_shape: ClassVar[tuple[int, int, int]] = (3, 32, 32)
    class_names: ClassVar[tuple[str, ...]] = tuple(str(i) for i in range(10))

    def load_raw(self) -> RawSplits:
        return load_svhn_raw(self.root(), self.download)
