"""What every dataset option declares: its static facts, class selection, subsampling and loader."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, List, Optional

from omegaconf import MISSING

from certssb.config import Option

#: Where datasets live when ``dataset.data_dir`` is null and ``CERTSSB_DATA_DIR`` is unset.
DEFAULT_DATA_DIR = "~/.cache/certssb/data"
DATA_DIR_ENV = "CERTSSB_DATA_DIR"


@dataclass
class DatasetSettings(Option):
    """Base of the ``dataset`` options.

    A subclass sets the static facts (``input_shape``, ``class_names``) and implements
    :meth:`load_raw`. ``classes`` (original ids) are kept and relabelled 0..k-1 in the given order;
    ``train_size`` / ``test_size`` then draw a seeded subset.
    """

    config_group: ClassVar[str] = "dataset"
    input_shape: ClassVar[tuple[int, int, int]] = (0, 0, 0)
    class_names: ClassVar[tuple[str, ...]] = ()
    classes: Optional[List[int]] = MISSING
    train_size: Optional[int] = MISSING
    test_size: Optional[int] = MISSING

    def load_raw(self):
        """All classes of the dataset as :class:`~certssb.dataset.splits.RawSplits`."""
        raise NotImplementedError

    @property
    def num_classes_all(self) -> int:
        return len(self.class_names)

    def num_classes(self) -> int:
        """Number of classes after ``classes`` selection."""
        return self.num_classes_all if self.classes is None else len(self.classes)

    def check(self, run) -> None:
        from .splits import parse_classes

        classes = parse_classes(self.classes, self.num_classes_all, self.name)
        if classes is not None and len(classes) < 2:
            self.fail("classes", f"must list at least two classes; got {classes}")
        for key in ("train_size", "test_size"):
            value = getattr(self, key)
            if value is not None and value < 1:
                self.fail(key, f"must be null or >= 1; got {value}")


@dataclass
class FileDatasetSettings(DatasetSettings):
    """A dataset read from files under ``data_dir`` (else ``$CERTSSB_DATA_DIR``, else
    ``~/.cache/certssb/data``); ``download: true`` fetches them on a machine with a network."""

    data_dir: Optional[str] = MISSING
    download: bool = MISSING

    def root(self) -> Path:
        value = self.data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
        return Path(str(value)).expanduser()
