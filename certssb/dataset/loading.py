"""``load_dataset``: the option's loader, then class selection and remapping, then seeded subsampling."""

from __future__ import annotations

import torch

from certssb.errors import DataNotFoundError

from .settings import DatasetSettings
from .splits import DatasetSplits, parse_classes, select_classes, subsample
from .uint8_batches import Uint8Images


def load_dataset(settings: DatasetSettings, seed: int) -> DatasetSplits:
    """Load the dataset ``settings`` describe: images as :class:`Uint8Images` (the loader's
    integers, read as float32 batches in [0, 1]), int64 labels.

    ``settings.classes`` (original ids) are kept and relabelled 0..k-1 in the given order;
    ``settings.train_size`` / ``test_size`` then draw a subset with
    ``make_generator(seed, "subsample", split)``.
    """
    name = settings.name
    shape, num_all, names_all = tuple(settings.input_shape), settings.num_classes_all, list(settings.class_names)
    classes = parse_classes(settings.classes, num_all, name)
    train_size, test_size = settings.train_size, settings.test_size

    raw = settings.load_raw()
    x_tr, y_tr, x_te, y_te = raw.x_train, raw.y_train, raw.x_test, raw.y_test
    if tuple(x_tr.shape[1:]) != shape or tuple(x_te.shape[1:]) != shape:
        raise DataNotFoundError(f"{name} images have shape {tuple(x_tr.shape[1:])}, expected {shape}: the files are not {name}")
    if classes is None:
        class_names, num_classes = list(names_all), num_all
    else:
        x_tr, y_tr = select_classes(x_tr, y_tr, classes, num_all)
        x_te, y_te = select_classes(x_te, y_te, classes, num_all)
        class_names, num_classes = [names_all[c] for c in classes], len(classes)
    x_tr, y_tr = subsample(x_tr, y_tr, train_size, seed, "train", name)
    x_te, y_te = subsample(x_te, y_te, test_size, seed, "test", name)
    return DatasetSplits(
        name=name,
        x_train=Uint8Images(x_tr.contiguous(), raw.scale),
        y_train=y_tr.to(torch.int64).contiguous(),
        x_test=Uint8Images(x_te.contiguous(), raw.scale),
        y_test=y_te.to(torch.int64).contiguous(),
        num_classes=num_classes,
        class_names=class_names,
    )
