"""``load_dataset``: dispatch by name, then class selection and remapping, then seeded subsampling."""

from __future__ import annotations

from typing import Callable

import torch

from certssb.errors import DataNotFoundError

from ._config import cfg_get, optional_int
from .cifar10 import load_cifar10_raw
from .digits import load_digits_raw
from .fashion_mnist import load_fashion_mnist_raw
from .info import check_name, dataset_info
from .mnist import load_mnist_raw
from .splits import DatasetSplits, RawSplits, parse_classes, select_classes, subsample

LOADERS: dict[str, Callable[[object], RawSplits]] = {
    "digits": load_digits_raw,
    "fashion_mnist": load_fashion_mnist_raw,
    "mnist": load_mnist_raw,
    "cifar10": load_cifar10_raw,
}


def load_dataset(cfg, seed: int) -> DatasetSplits:
    """Load ``cfg.name`` as float32 ``[n, C, H, W]`` in [0, 1] with int64 labels.

    ``cfg.classes`` (original ids) are kept and relabelled 0..k-1 in the given order;
    ``cfg.train_size`` / ``cfg.test_size`` then draw a subset with
    ``make_generator(seed, "subsample", split)``.
    """
    name = check_name(cfg_get(cfg, "name"))
    shape, num_all, names_all = dataset_info(name)
    classes = parse_classes(cfg_get(cfg, "classes", None), num_all, name)
    train_size = optional_int(cfg, "train_size")
    test_size = optional_int(cfg, "test_size")

    raw = LOADERS[name](cfg)
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

    def to_float(x: torch.Tensor) -> torch.Tensor:
        return (x.to(torch.float32) / raw.scale).contiguous()

    return DatasetSplits(
        name=name,
        x_train=to_float(x_tr),
        y_train=y_tr.to(torch.int64).contiguous(),
        x_test=to_float(x_te),
        y_test=y_te.to(torch.int64).contiguous(),
        num_classes=num_classes,
        class_names=class_names,
    )
