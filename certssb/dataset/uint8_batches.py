"""Images held as uint8 and converted to float32 one batch at a time.

A 224-px RGB image takes 150 KB as uint8 and 600 KB as float32: ImageNette's 9,469 training
images need 1.4 GB instead of 5.7 GB. :class:`Uint8Images` keeps the integer tensor a loader
returns (:class:`~certssb.dataset.splits.RawSplits`) and hands out float batches in [0, 1].
"""

from __future__ import annotations

from typing import Iterator

import torch

from certssb.errors import ConfigError


class Uint8Images:
    """Integer images ``[n, C, H, W]`` (values ``0..scale``) read as float32 batches in [0, 1].

    ``images[idx]`` with an int, a slice, a list or an index tensor returns
    ``images.data[idx].to(float32) / scale`` (an int gives one ``[C, H, W]`` image);
    ``device`` moves each batch before the conversion, so only uint8 crosses the bus.
    """

    def __init__(self, data: torch.Tensor, scale: float = 255.0) -> None:
        if data.dim() != 4:
            raise ValueError(f"images must be [n, C, H, W]; got shape {tuple(data.shape)}")
        if data.dtype not in (torch.uint8, torch.int16, torch.int32, torch.int64):
            raise ValueError(f"images must hold integers; got {data.dtype}")
        if not scale > 0:
            raise ValueError(f"scale must be > 0; got {scale}")
        self.data = data
        self.scale = float(scale)

    def __len__(self) -> int:
        return int(self.data.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.data.shape)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.data.shape[1:])  # type: ignore[return-value]

    def __getitem__(self, index) -> torch.Tensor:
        return self.batch(index)

    def batch(self, index, device: torch.device | str | None = None,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Images ``index`` as ``dtype`` in [0, 1], converted on ``device`` (default: where they are)."""
        if isinstance(index, torch.Tensor) and index.device != self.data.device:
            index = index.to(self.data.device)
        part = self.data[index]
        if device is not None:
            part = part.to(device, non_blocking=True)
        return part.to(dtype) / self.scale

    def batches(self, batch_size: int, device: torch.device | str | None = None,
                dtype: torch.dtype = torch.float32) -> Iterator[torch.Tensor]:
        """Consecutive float batches of at most ``batch_size`` images, in order."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1; got {batch_size!r}")
        for start in range(0, len(self), batch_size):
            yield self.batch(slice(start, start + batch_size), device, dtype)

    def subset(self, index) -> "Uint8Images":
        """The images ``index`` as a new (uint8) container: class selection, subsampling."""
        return Uint8Images(self.data[index], self.scale)

    def to_float(self) -> torch.Tensor:
        """All images as one float32 tensor (what ``load_dataset`` holds today)."""
        return self.batch(slice(None))
