"""A user's image folder: ``<root>/train/<class>/*`` and ``<root>/test/<class>/*`` (or ``val/``).

Read with ``torchvision.datasets.ImageFolder`` (PIL; .png, .jpg, .jpeg, .bmp, .ppm, .tif, .webp,
...), converted to RGB and resized to ``image_size``. Classes are the subfolder names in sorted
order; both splits must have the same ones. Covers dogs vs cats (``train/cat``, ``train/dog``,
``test/cat``, ``test/dog``) and any user data in that shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from omegaconf import MISSING

from certssb.errors import ConfigError, DataNotFoundError, one_line

from .images import check_image_size, check_resize_mode, stack_images
from .settings import DatasetSettings
from .splits import RawSplits

TEST_SPLIT_NAMES = ("test", "val")
ROOT_UNSET = "dataset.root must be set to a folder with train/<class>/ and test/<class>/ subfolders"


def _split_dirs(root: Path) -> tuple[Path, Path]:
    if not root.is_dir():
        raise DataNotFoundError(f"dataset.root={str(root)!r} is not a directory: point it at a folder with "
                                "train/<class>/ and test/<class>/ (or val/<class>/) subfolders")
    train = root / "train"
    test = next((root / n for n in TEST_SPLIT_NAMES if (root / n).is_dir()), None)
    if not train.is_dir() or test is None:
        lacks = " and ".join(x for x, ok in (("train/", train.is_dir()), ("test/ (or val/)", test is not None)) if not ok)
        raise DataNotFoundError(f"image folder {root} lacks {lacks}: expected train/<class>/ and test/<class>/ "
                                "(or val/<class>/) subfolders holding the images")
    return train, test


def _classes(split_dir: Path) -> list[str]:
    return sorted(d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))


def image_folder_info(root: Path, image_size: int = 224) -> tuple[tuple[int, int, int], int, list[str]]:
    """``(input_shape, num_classes, class_names)`` from the folder names alone (no image read)."""
    check_image_size(image_size)
    train, test = _split_dirs(Path(root).expanduser())
    names, test_names = _classes(train), _classes(test)
    if len(names) < 2:
        raise DataNotFoundError(f"image folder {train} has {len(names)} class subfolder(s): need at least 2")
    if names != test_names:
        raise DataNotFoundError(
            f"image folder {root}: {train.name}/ has classes {names} but {test.name}/ has {test_names}: "
            "both splits need the same class subfolders"
        )
    return (3, image_size, image_size), len(names), names


def load_image_folder_raw(root: Path, image_size: int = 224, resize_mode: str = "center_crop") -> RawSplits:
    """The folder's images as uint8 ``[n, 3, image_size, image_size]``, labels = sorted class index.

    Knobs (defaults; the Cert-SSB paper's dogs-vs-cats setting, 224 px for an ImageNet ResNet-18):
    ``root`` (required, no default: the folder), ``image_size: 224``,
    ``resize_mode: center_crop``; the shared ``classes``, ``train_size``, ``test_size`` (null).
    No download. Checks: ``dataset.root must be set``, ``dataset.image_size must be an integer
    >= 8``, ``dataset.resize_mode must be one of squash, center_crop``; a missing folder, a missing
    split, fewer than 2 classes, different classes in the two splits, an empty class or an
    unreadable image are one-line DataNotFoundErrors.
    """
    import torchvision

    if root is None or str(root) == "":
        raise ConfigError(ROOT_UNSET)
    check_resize_mode(resize_mode)
    root = Path(root).expanduser()
    image_folder_info(root, image_size)
    train_dir, test_dir = _split_dirs(root)
    splits = []
    for split_dir in (train_dir, test_dir):
        try:
            ds = torchvision.datasets.ImageFolder(str(split_dir))
        except (FileNotFoundError, OSError) as exc:  # a class folder without any image
            raise DataNotFoundError(f"image folder {split_dir}: {one_line(exc)}") from exc
        try:
            x, y = stack_images((ds[i] for i in range(len(ds))), image_size, resize_mode)
        except OSError as exc:  # PIL.UnidentifiedImageError is an OSError
            raise DataNotFoundError(f"image folder {split_dir}: an image cannot be read ({one_line(exc)})") from exc
        splits.append((x, y))
    (x_tr, y_tr), (x_te, y_te) = splits
    return RawSplits(x_tr, y_tr, x_te, y_te, scale=255.0)


@dataclass
class ImageFolderSettings(DatasetSettings):
    """``dataset=image_folder``: a user's ``root/{train,test}/<class>/`` images, resized to ``image_size``.

    The classes are the folder's (sorted subfolder names): ``class_names`` (and so
    ``num_classes()``) lists ``root`` when asked for, without opening an image; ``input_shape``
    follows ``image_size``. A missing or malformed folder is a one-line error at check time.
    """

    root: Optional[str] = MISSING
    image_size: int = MISSING
    resize_mode: str = MISSING

    def folder(self) -> Path:
        """``root`` as a path; a one-line ConfigError when it is unset."""
        if self.root is None or str(self.root).strip() == "":
            raise ConfigError(ROOT_UNSET)
        return Path(str(self.root)).expanduser()

    @property
    def class_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(image_folder_info(self.folder(), self.image_size)[2])

    @property
    def input_shape(self) -> tuple[int, int, int]:  # type: ignore[override]
        return (3, self.image_size, self.image_size)

    def check(self, run) -> None:
        check_image_size(self.image_size)
        check_resize_mode(self.resize_mode)
        image_folder_info(self.folder(), self.image_size)  # both splits, the same >= 2 classes in each
        super().check(run)

    def load_raw(self) -> RawSplits:
        return load_image_folder_raw(self.folder(), self.image_size, self.resize_mode)
