"""Images held as uint8 and converted to float32 one batch at a time.

A 224-px RGB image takes 150 KB as uint8 and 600 KB as float32: ImageNette's 9,469 training
images need 1.4 GB instead of 5.7 GB. :class:`Uint8Images` keeps the integer tensor a loader
returns (:class:`~certssb.dataset.splits.RawSplits`) and hands out float batches in [0, 1].
"""

from __future__ import annotations

import torch

from .batched import BatchedImages


class Uint8Images(BatchedImages):
    """Integer images ``[n, C, H, W]`` (values ``0..scale``) read as float32 batches in [0, 1].

    ``images[idx]`` returns ``images.data[idx].to(float32) / scale``, bit for bit, wherever the
    data live: on the CPU that division runs per batch; elsewhere (uint8 data moved to a GPU with
    ``to``) a 256-entry table computed by that same CPU division is indexed, so a GPU never
    rounds differently. ``device`` moves each batch before the conversion (only integers cross
    the bus); another ``dtype`` casts the float32 values.
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
        self._table: torch.Tensor | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.data.shape)

    @property
    def nbytes(self) -> int:
        return self.data.numel() * self.data.element_size()

    def _convert(self, part: torch.Tensor) -> torch.Tensor:
        if part.device.type == "cpu" or part.dtype != torch.uint8:
            return part.to(torch.float32) / self.scale
        return self._by_table(part)

    def _by_table(self, part: torch.Tensor) -> torch.Tensor:
        """uint8 ``part`` converted by indexing the CPU-computed table (bit-identical to the CPU)."""
        if self._table is None or self._table.device != part.device:
            table = torch.arange(256, dtype=torch.uint8).to(torch.float32) / self.scale
            self._table = table.to(part.device)
        return self._table[part.to(torch.int32)]

    def batch(self, index, device: torch.device | str | None = None,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Images ``index`` as float32 in [0, 1] (cast to ``dtype``), converted on ``device``."""
        if isinstance(index, torch.Tensor) and index.device != self.data.device:
            index = index.to(self.data.device)
        part = self.data[index]
        if device is not None:
            part = part.to(device, non_blocking=True)
        out = self._convert(part)
        return out if dtype == torch.float32 else out.to(dtype)

    def subset(self, index) -> "Uint8Images":
        """The images ``index`` as a new (uint8) container: class selection, subsampling."""
        if isinstance(index, torch.Tensor) and index.device != self.data.device:
            index = index.to(self.data.device)
        return Uint8Images(self.data[index].contiguous(), self.scale)

    def to(self, device) -> "Uint8Images":
        """The same images with their integers on ``device`` (converted there per batch)."""
        return Uint8Images(self.data.to(device), self.scale)
