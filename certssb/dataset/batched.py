"""Image sets read as float32 batches in [0, 1]: the interface every consumer of images uses.

:class:`BatchedImages` is what a loaded split is (``Uint8Images``), what a poisoned training set
is (``PatchedImages``: uint8 rows plus float rows) and what the triggered test set is
(``certssb.attack.triggered.TriggeredImages``). Consumers ask for batches (``x[idx]``,
``x.batch(idx, device)``, ``x.batches(size)``) and never hold the whole set as float.
:func:`as_images` also accepts a plain float tensor (``FloatImages``), so small hand-made sets
and tools keep working.
"""

from __future__ import annotations

from typing import Iterator

import torch

from certssb.errors import ConfigError


class BatchedImages:
    """``n`` images ``[C, H, W]``; ``x[idx]`` / ``x.batch(idx, device)`` are float32 batches.

    ``idx`` may be an int (one ``[C, H, W]`` image), a slice, a list or an index tensor of any
    shape (a ``[G, b]`` tensor gives ``[G, b, C, H, W]``). Subclasses implement ``batch``,
    ``subset``, ``to`` and ``shape``; the values of image ``i`` never depend on the batch it is
    read in.
    """

    @property
    def shape(self) -> tuple[int, ...]:  # pragma: no cover - interface
        raise NotImplementedError

    def batch(self, index, device: torch.device | str | None = None,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def subset(self, index) -> "BatchedImages":  # pragma: no cover - interface
        raise NotImplementedError

    def to(self, device) -> "BatchedImages":  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def nbytes(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def float_dtype(self) -> torch.dtype:
        """The dtype batches come in by default (float32; a wrapped float tensor keeps its own)."""
        return torch.float32

    def __len__(self) -> int:
        return int(self.shape[0])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.shape[1:])  # type: ignore[return-value]

    def dim(self) -> int:
        return len(self.shape)

    def __getitem__(self, index) -> torch.Tensor:
        return self.batch(index)

    def batches(self, batch_size: int, device: torch.device | str | None = None,
                dtype: torch.dtype = torch.float32) -> Iterator[torch.Tensor]:
        """Consecutive float batches of at most ``batch_size`` images, in order."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1; got {batch_size!r}")
        for start in range(0, len(self), batch_size):
            yield self.batch(slice(start, start + batch_size), device, dtype)

    def to_float(self) -> torch.Tensor:
        """All images as one float32 tensor (small sets, tools and tests only)."""
        return self.batch(slice(None))


class FloatImages(BatchedImages):
    """A float tensor ``[n, C, H, W]`` behind the :class:`BatchedImages` interface."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.x.shape)

    @property
    def nbytes(self) -> int:
        return self.x.numel() * self.x.element_size()

    @property
    def float_dtype(self) -> torch.dtype:
        return self.x.dtype

    def batch(self, index, device=None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``x[index]`` on ``device``, as ``dtype`` (default: the tensor's own)."""
        if isinstance(index, torch.Tensor) and index.device != self.x.device:
            index = index.to(self.x.device)
        part = self.x[index]
        return part.to(device if device is not None else part.device, dtype or part.dtype)

    def __getitem__(self, index) -> torch.Tensor:
        return self.batch(index)

    def subset(self, index) -> "FloatImages":
        return FloatImages(self.batch(index))

    def to(self, device) -> "FloatImages":
        """On ``device`` as float32 (what training and prediction run in)."""
        return FloatImages(self.x.to(device, torch.float32).contiguous())


def as_images(x, what: str = "x") -> BatchedImages:
    """``x`` as :class:`BatchedImages`: itself, or a float tensor ``[n, C, H, W]`` wrapped."""
    if isinstance(x, BatchedImages):
        return x
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        raise ConfigError(f"{what} must be images [n, C, H, W] (float tensor or uint8 images), "
                          f"got {getattr(x, 'shape', type(x))}")
    return FloatImages(x)
