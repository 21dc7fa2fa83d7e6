"""GTSRB through ``torchvision.datasets.GTSRB`` (``<data_dir>/gtsrb/``), resized to one size.

torchvision's layout: ``gtsrb/GTSRB/Training/<5-digit class>/*.ppm`` for training and
``gtsrb/GTSRB/Final_Test/Images/*.ppm`` with labels in ``gtsrb/GT-final_test.csv``
(``;``-separated, columns ``Filename`` and ``ClassId``) for testing. Images are 15..250 px.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.error import URLError

from omegaconf import MISSING

from certssb.errors import DataNotFoundError, one_line

from .settings import FileDatasetSettings
from .images import check_image_size, check_resize_mode, stack_images
from .splits import RawSplits

GTSRB_NAMES = [
    "Speed limit (20km/h)", "Speed limit (30km/h)", "Speed limit (50km/h)", "Speed limit (60km/h)",
    "Speed limit (70km/h)", "Speed limit (80km/h)", "End of speed limit (80km/h)", "Speed limit (100km/h)",
    "Speed limit (120km/h)", "No passing", "No passing for vehicles over 3.5 metric tons",
    "Right-of-way at the next intersection", "Priority road", "Yield", "Stop", "No vehicles",
    "Vehicles over 3.5 metric tons prohibited", "No entry", "General caution", "Dangerous curve to the left",
    "Dangerous curve to the right", "Double curve", "Bumpy road", "Slippery road", "Road narrows on the right",
    "Road work", "Traffic signals", "Pedestrians", "Children crossing", "Bicycles crossing",
    "Beware of ice/snow", "Wild animals crossing", "End of all speed and passing limits", "Turn right ahead",
    "Turn left ahead", "Ahead only", "Go straight or right", "Go straight or left", "Keep right", "Keep left",
    "Roundabout mandatory", "End of no passing", "End of no passing by vehicles over 3.5 metric tons",
]

BASE_FOLDER = "gtsrb"
REQUIRED = ("GTSRB/Training", "GTSRB/Final_Test/Images", "GT-final_test.csv")


def _training_samples(folder: Path):
    """(PIL image, class) for ``Training/<5-digit class>/*.ppm``.

    torchvision's GTSRB numbers the training folders by their sorted position, which equals the
    folder's number only when all 43 are present; the number in the name is the class.
    """
    from PIL import Image
    from torchvision.datasets.folder import make_dataset

    classes = {d.name: int(d.name) for d in folder.iterdir() if d.is_dir() and d.name.isdigit()}
    for path, label in make_dataset(str(folder), classes, extensions=(".ppm",)):
        with Image.open(path) as image:
            yield image.convert("RGB"), label


def load_gtsrb_raw(data_dir: Path, download: bool = False, image_size: int = 32,
                   resize_mode: str = "squash") -> RawSplits:
    """GTSRB as uint8 ``[n, 3, image_size, image_size]`` (39,209 train, 12,630 test), labels 0..42.

    Knobs (defaults; Stallkamp et al. 2012, preprocessed as in BackdoorBench: every image resized
    to 32 x 32): ``data_dir`` (null = ``$CERTSSB_DATA_DIR`` or ``~/.cache/certssb/data``),
    ``download: false``, ``image_size: 32``, ``resize_mode: squash``; the shared ``classes``,
    ``train_size``, ``test_size`` (null).
    Checks: ``dataset.image_size must be an integer >= 8``, ``dataset.resize_mode must be one of
    squash, center_crop``, ``dataset.download must be true or false``.
    """
    import torchvision

    check_image_size(image_size)
    check_resize_mode(resize_mode)
    root = Path(data_dir)
    base = root / BASE_FOLDER
    missing = [p for p in REQUIRED if not (base / p).exists()]
    if missing and not download:
        raise DataNotFoundError(
            f"GTSRB not found: {base} lacks {', '.join(missing)}: set dataset.download=true on a machine "
            "with a network, or set dataset.data_dir to a folder holding gtsrb/ in torchvision's layout"
        )
    splits = []
    for split in ("train", "test"):
        try:
            ds = torchvision.datasets.GTSRB(root=str(root), split=split, download=download)
            if split == "train":  # the class is the folder's number, also when some folders are absent
                x, y = stack_images(_training_samples(base / "GTSRB" / "Training"), image_size, resize_mode)
            else:  # labels from GT-final_test.csv
                x, y = stack_images((ds[i] for i in range(len(ds))), image_size, resize_mode)
        except (URLError, OSError, RuntimeError, ValueError, KeyError) as exc:
            raise DataNotFoundError(
                f"reading GTSRB's {split} split from {base} failed ({one_line(exc)}): delete the folder and set "
                "dataset.download=true, or check the files (torchvision's layout)"
            ) from exc
        if len(y) == 0:
            raise DataNotFoundError(f"GTSRB's {split} split in {base} holds no .ppm image: the folder is incomplete")
        splits.append((x, y))
    (x_tr, y_tr), (x_te, y_te) = splits
    return RawSplits(x_tr, y_tr, x_te, y_te, scale=255.0)


@dataclass
class GTSRBSettings(FileDatasetSettings):
    """``dataset=gtsrb``: 43 traffic-sign classes, every image resized to ``image_size``."""

    class_names: ClassVar[tuple[str, ...]] = tuple(GTSRB_NAMES)
    image_size: int = MISSING
    resize_mode: str = MISSING

    @property
    def input_shape(self) -> tuple[int, int, int]:  # type: ignore[override]
        return (3, self.image_size, self.image_size)

    def check(self, run) -> None:
        check_image_size(self.image_size)
        check_resize_mode(self.resize_mode)
        super().check(run)

    def load_raw(self) -> RawSplits:
        return load_gtsrb_raw(self.root(), self.download, self.image_size, self.resize_mode)
