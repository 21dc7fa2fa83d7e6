"""ImageNette (10 easy ImageNet classes) through ``torchvision.datasets.Imagenette``.

On disk: ``<data_dir>/imagenette2[-320|-160]/{train,val}/<wnid>/*.JPEG`` (fast.ai's archive,
extracted). Images of varying size are resized to ``image_size`` (shorter side, then centre crop).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.error import URLError

import torch
from omegaconf import MISSING

from certssb.errors import ConfigError, DataNotFoundError, one_line

from .settings import FileDatasetSettings
from .images import check_image_size, check_resize_mode, stack_images
from .splits import RawSplits

#: ImageNette's classes in torchvision's order (sorted WordNet ids n01440764 .. n03888257)
IMAGENETTE_NAMES = [
    "tench", "English springer", "cassette player", "chain saw", "church",
    "French horn", "garbage truck", "gas pump", "golf ball", "parachute",
]

#: the ten WordNet ids in sorted order (label = position; names in IMAGENETTE_NAMES)
WNIDS = ["n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
         "n03394916", "n03417042", "n03425413", "n03445777", "n03888257"]
#: ``dataset.variant`` -> the archive's folder name
VARIANTS = {"full": "imagenette2", "320px": "imagenette2-320", "160px": "imagenette2-160"}


def load_imagenette_raw(data_dir: Path, download: bool = False, variant: str = "320px", image_size: int = 224,
                        resize_mode: str = "center_crop") -> RawSplits:
    """ImageNette as uint8 ``[n, 3, image_size, image_size]`` (9,469 train, 3,925 val), labels 0..9.

    The ``val`` split is the test set. Knobs (defaults; Howard 2019, fast.ai's imagenette2; 224 px
    centre crops as for ImageNet models): ``data_dir`` (null = ``$CERTSSB_DATA_DIR`` or
    ``~/.cache/certssb/data``), ``download: false``, ``variant: 320px`` (full | 320px | 160px:
    which archive), ``image_size: 224``, ``resize_mode: center_crop``; the shared ``classes``,
    ``train_size``, ``test_size`` (null).
    Checks: ``dataset.variant must be one of full, 320px, 160px``, ``dataset.image_size must be an
    integer >= 8``, ``dataset.resize_mode must be one of squash, center_crop``.
    """
    import torchvision

    if variant not in VARIANTS:
        raise ConfigError(f"dataset.variant must be one of {', '.join(VARIANTS)}; got {variant!r}")
    check_image_size(image_size)
    check_resize_mode(resize_mode)
    root = Path(data_dir)
    folder = root / VARIANTS[variant]
    missing = [s for s in ("train", "val") if not (folder / s).is_dir()]
    if missing and not download:
        raise DataNotFoundError(
            f"ImageNette not found: {folder} lacks {', '.join(f'{s}/' for s in missing)}: set dataset.download=true "
            f"on a machine with a network, or extract {VARIANTS[variant]}.tgz into dataset.data_dir"
        )
    splits = []
    for split in ("train", "val"):
        try:
            ds = torchvision.datasets.Imagenette(root=str(root), split=split, size=variant, download=download)
            x, y = stack_images((ds[i] for i in range(len(ds))), image_size, resize_mode)
            # torchvision numbers the wnid folders present; the label is the wnid's place among all ten
            y = torch.tensor([WNIDS.index(ds.wnids[int(c)]) for c in y], dtype=torch.int64)
        except (URLError, OSError, RuntimeError, ValueError, KeyError) as exc:
            raise DataNotFoundError(
                f"reading ImageNette's {split} split from {folder} failed ({one_line(exc)}): check the files, "
                "or delete the folder and set dataset.download=true"
            ) from exc
        if len(y) == 0:
            raise DataNotFoundError(f"ImageNette's {split} split in {folder} holds no .JPEG image")
        splits.append((x, y))
    (x_tr, y_tr), (x_te, y_te) = splits
    return RawSplits(x_tr, y_tr, x_te, y_te, scale=255.0)


@dataclass
class ImagenetteSettings(FileDatasetSettings):
    """``dataset=imagenette``: 10 ImageNet classes from fast.ai's archive, resized to ``image_size``."""

    class_names: ClassVar[tuple[str, ...]] = tuple(IMAGENETTE_NAMES)
    variant: str = MISSING
    image_size: int = MISSING
    resize_mode: str = MISSING

    @property
    def input_shape(self) -> tuple[int, int, int]:  # type: ignore[override]
        return (3, self.image_size, self.image_size)

    def check(self, run) -> None:
        self.require_choice("variant", tuple(VARIANTS))
        check_image_size(self.image_size)
        check_resize_mode(self.resize_mode)
        super().check(run)

    def load_raw(self) -> RawSplits:
        return load_imagenette_raw(self.root(), self.download, self.variant, self.image_size, self.resize_mode)
