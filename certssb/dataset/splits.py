"""The ``DatasetSplits`` container and the class selection / subsampling applied to every dataset."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, replace

import torch

from certssb.errors import ConfigError
from certssb.seeding import make_generator

from .batched import BatchedImages


@dataclass
class DatasetSplits:
    """A loaded dataset: images ``[n, C, H, W]`` and int64 labels 0..k-1.

    ``load_dataset`` holds the images as ``Uint8Images`` (a quarter of float32's memory), read as
    float32 batches in [0, 1] (``x[idx]``, ``x.batch(idx, device)``); a float32 tensor in [0, 1]
    works too (small hand-made sets).
    """

    name: str
    x_train: torch.Tensor | BatchedImages
    y_train: torch.Tensor
    x_test: torch.Tensor | BatchedImages
    y_test: torch.Tensor
    num_classes: int
    class_names: list[str]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x_train.shape[1:])  # type: ignore[return-value]

    def to_float(self) -> "DatasetSplits":
        """These splits with both image sets converted once to float32 tensors (small sets, tools)."""
        def conv(x):
            return x.to_float() if isinstance(x, BatchedImages) else x
        return replace(self, x_train=conv(self.x_train), x_test=conv(self.x_test))


@dataclass
class RawSplits:
    """What a loader returns: integer images ``[n, C, H, W]`` (values 0..scale), all classes."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    scale: float


def parse_classes(classes, num_classes_all: int, name: str) -> list[int] | None:
    """Check ``dataset.classes``: None, or distinct existing original class ids."""
    if classes is None:
        return None
    if isinstance(classes, (str, bytes)) or not hasattr(classes, "__iter__"):
        raise ConfigError(f"dataset.classes={classes!r} is invalid: use null or a list of class ids")
    ids = list(classes)
    if not ids:
        raise ConfigError("dataset.classes is an empty list: use null for all classes or list the class ids")
    for c in ids:
        if isinstance(c, bool) or not isinstance(c, numbers.Integral) or not 0 <= int(c) < num_classes_all:
            raise ConfigError(
                f"dataset.classes contains {c!r}, not a class of {name}: use ids in 0..{num_classes_all - 1}"
            )
    ids = [int(c) for c in ids]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"dataset.classes={ids} repeats a class id: list each class once")
    return ids


def select_classes(x: torch.Tensor, y: torch.Tensor, classes: list[int], num_classes_all: int):
    """Keep samples whose label is in ``classes`` and relabel ``classes[j]`` -> ``j``."""
    lookup = torch.full((num_classes_all,), -1, dtype=torch.int64)
    lookup[torch.tensor(classes, dtype=torch.int64)] = torch.arange(len(classes), dtype=torch.int64)
    new_y = lookup[y]
    keep = new_y >= 0
    return x[keep], new_y[keep]


def subsample(x: torch.Tensor, y: torch.Tensor, size: int | None, seed: int, split: str, name: str):
    """A seeded subset of ``size`` samples (original order kept); None keeps everything."""
    if size is None:
        return x, y
    n = int(y.shape[0])
    if size > n:
        raise ConfigError(
            f"dataset.{split}_size={size} but {name} has only {n} {split} samples after class selection: "
            f"use null or a value <= {n}"
        )
    gen = make_generator(seed, "subsample", split)
    index = torch.randperm(n, generator=gen)[:size].sort().values
    return x[index], y[index]
