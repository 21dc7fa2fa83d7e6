"""The ``Trigger`` interface and the additive triggers built on it."""

from __future__ import annotations

import torch


class Trigger:
    """A backdoor trigger for images of one shape ``(C, H, W)``; ``apply`` returns a triggered copy.

    ``apply`` must treat each image on its own (the same values whichever batch it is in): the
    triggered test set is triggered batch by batch (``certssb.attack.triggered``).
    """

    name: str = "trigger"

    def __init__(self, image_shape):
        self.image_shape = tuple(int(s) for s in image_shape)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"{self.name} trigger expects [n, {', '.join(map(str, self.image_shape))}], got {list(x.shape)}")

    def apply(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(image_shape={self.image_shape})"


class AdditiveTrigger(Trigger):
    """``x + pattern``, optionally clipped to [0, 1]; ``pattern`` has L2 norm ``delta``."""

    def __init__(self, name: str, pattern: torch.Tensor, delta: float, clip: bool):
        super().__init__(pattern.shape)
        self.name = name
        self.pattern = pattern.to(torch.float32)
        self.delta = float(delta)
        self.clip = bool(clip)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        out = x + self.pattern.to(device=x.device, dtype=x.dtype)
        return out.clamp_(0.0, 1.0) if self.clip else out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, delta={self.delta}, clip={self.clip}, image_shape={self.image_shape})"
