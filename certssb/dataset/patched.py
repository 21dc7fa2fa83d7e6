"""A uint8 image set with some rows replaced by float32 images: the poisoned training set.

The poisoned (and WaNet cross) rows keep the exact float values the attack produced: rounding
them back to uint8 would change the realised L2 sizes the certificate uses. Every other row stays
uint8 and is converted per batch.
"""

from __future__ import annotations

import torch

from .batched import BatchedImages


class PatchedImages(BatchedImages):
    """``base`` (a :class:`BatchedImages`) with rows ``index`` replaced by the float32 ``rows``.

    ``x[idx]`` is ``base[idx]`` with every position whose image is in ``index`` taken from
    ``rows`` (no host sync: a ``torch.where`` over the batch).
    """

    def __init__(self, base: BatchedImages, index: torch.Tensor, rows: torch.Tensor) -> None:
        index = torch.as_tensor(index).to(torch.int64).reshape(-1)
        n = len(base)
        if rows.dim() != 4 or tuple(rows.shape[1:]) != tuple(base.input_shape) or rows.shape[0] != index.numel():
            raise ValueError(f"rows must be [{index.numel()}, {', '.join(map(str, base.input_shape))}]; "
                             f"got {tuple(rows.shape)}")
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n):
            raise ValueError(f"row indices must lie in 0..{n - 1}")
        if torch.unique(index).numel() != index.numel():
            raise ValueError("row indices must be distinct")
        self.base = base
        self.index = index
        self.rows = rows.to(torch.float32)
        slot = torch.full((n,), -1, dtype=torch.int64, device=index.device)
        slot[index] = torch.arange(index.numel(), dtype=torch.int64, device=index.device)
        self._slot = slot

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.base.shape)

    @property
    def nbytes(self) -> int:
        return self.base.nbytes + self.rows.numel() * 4 + self._slot.numel() * 8

    def batch(self, index, device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        out = self.base.batch(index, device)
        if isinstance(index, torch.Tensor) and index.device != self._slot.device:
            index = index.to(self._slot.device)
        slot = self._slot[index]
        if self.index.numel():
            slot = slot.to(out.device)
            over = self.rows.to(out.device)[slot.clamp(min=0)]
            hit = (slot >= 0).view(tuple(slot.shape) + (1,) * len(self.input_shape))
            out = torch.where(hit, over, out)
        return out if dtype == torch.float32 else out.to(dtype)

    def subset(self, index) -> BatchedImages:
        if isinstance(index, torch.Tensor) and index.device != self._slot.device:
            index = index.to(self._slot.device)
        slot = self._slot[index].reshape(-1)
        kept = torch.nonzero(slot >= 0).flatten()
        base = self.base.subset(index)
        if not kept.numel():
            return base
        return PatchedImages(base, kept.to(self._slot.device), self.rows[slot[kept].to(self.rows.device)])

    def to(self, device) -> "PatchedImages":
        moved = PatchedImages.__new__(PatchedImages)
        moved.base, moved.index = self.base.to(device), self.index.to(device)
        moved.rows, moved._slot = self.rows.to(device), self._slot.to(device)
        return moved
