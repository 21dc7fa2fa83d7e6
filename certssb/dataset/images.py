"""Decoding image files into uint8 arrays of one size (for the folder-based datasets).

``resize_mode``:

- ``"squash"``: resize straight to ``size x size`` (aspect ratio not kept; GTSRB's usual
  preprocessing, the signs fill their crops).
- ``"center_crop"``: resize the shorter side to ``size``, then cut the central ``size x size``
  square (the ImageNet convention, used for ImageNette and image folders).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from certssb.errors import ConfigError

RESIZE_MODES = ("squash", "center_crop")


def check_image_size(size, key: str = "dataset.image_size") -> int:
    """An int >= 8, else a one-line ConfigError naming ``key``."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ConfigError(f"{key} must be an integer >= 8; got {size!r}")
    return size


def check_resize_mode(mode, key: str = "dataset.resize_mode") -> str:
    if mode not in RESIZE_MODES:
        raise ConfigError(f"{key} must be one of {', '.join(RESIZE_MODES)}; got {mode!r}")
    return mode


def resize_rgb(image, size: int, mode: str = "center_crop") -> np.ndarray:
    """A PIL image -> uint8 array ``[3, size, size]`` (bilinear resampling, RGB)."""
    from PIL import Image

    image = image.convert("RGB")
    if mode == "squash":
        image = image.resize((size, size), Image.BILINEAR)
    else:
        w, h = image.size
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        image = image.resize((nw, nh), Image.BILINEAR)
        left, top = (nw - size) // 2, (nh - size) // 2
        image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def stack_images(samples: Iterable, size: int, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(PIL image, label)`` pairs -> uint8 ``[n, 3, size, size]`` and int64 ``[n]`` tensors."""
    images, labels = [], []
    for image, label in samples:
        images.append(resize_rgb(image, size, mode))
        labels.append(int(label))
    if not images:
        return torch.empty((0, 3, size, size), dtype=torch.uint8), torch.empty((0,), dtype=torch.int64)
    return torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.int64)
