"""RAB's one-pixel and four-pixel triggers: added to the image, then clipped to [0, 1].

The pattern has L2 norm ``delta``: each of the P pixels gets ``delta / sqrt(P * C)`` on every
one of the C channels (one-pixel: delta on MNIST, delta/sqrt(3) per channel on CIFAR; four-pixel:
delta/2 per pixel on MNIST, delta/sqrt(12) per channel-pixel on CIFAR). Clipping can only make
the realised size smaller than ``delta``.

Default positions (row, col), as in RAB's code:

- one channel (MNIST-like): one-pixel at ``(23H//28, 23W//28)``: (23, 23) on 28x28, (6, 6) on
  the 8x8 digits; four-pixel around the anchor ``a = (19H//28, 19W//28)``: ``a+(-1,+1), a,
  a+(+1,-1), a+(+1,+1)``: (18,20), (19,19), (20,18), (20,20) on 28x28; (4,6), (5,5), (6,4),
  (6,6) on 8x8.
- several channels (CIFAR-like): one-pixel at the centre ``((H-1)//2, (W-1)//2)``: (15, 15) on
  32x32; four-pixel the same shape around the centre: (14,16), (15,15), (16,14), (16,16).

``attack.positions`` overrides them: a list of [row, col] pairs (one pair for onepixel, four for
fourpixel; onepixel also accepts a bare [row, col]).
"""

from __future__ import annotations

import math

import torch

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from omegaconf import MISSING

from certssb.errors import ConfigError

from .base import AdditiveTrigger
from .settings import AttackSettings

FOURPIXEL_OFFSETS = ((-1, 1), (0, 0), (1, -1), (1, 1))
COUNT = {"onepixel": 1, "fourpixel": 4}


def default_positions(kind: str, image_shape) -> list[tuple[int, int]]:
    """The default pixel positions of ``kind`` (``onepixel`` / ``fourpixel``) for ``image_shape``."""
    c, h, w = image_shape
    if kind == "onepixel":
        if c == 1:
            return [((23 * h) // 28, (23 * w) // 28)]
        return [((h - 1) // 2, (w - 1) // 2)]
    if h < 3 or w < 3:
        raise ConfigError(f"fourpixel needs images of at least 3x3, got {h}x{w}: use another attack")
    ar, ac = ((19 * h) // 28, (19 * w) // 28) if c == 1 else ((h - 1) // 2, (w - 1) // 2)
    ar, ac = min(max(ar, 1), h - 2), min(max(ac, 1), w - 2)
    return [(ar + dr, ac + dc) for dr, dc in FOURPIXEL_OFFSETS]


def parse_positions(value, kind: str, image_shape) -> list[tuple[int, int]]:
    """Check ``attack.positions`` against the image size and the trigger's pixel count."""
    _, h, w = image_shape
    want = COUNT[kind]
    hint = f"use null or a list of {want} [row, col] pair(s) inside {h}x{w}"
    if not is_sequence(value):
        raise ConfigError(f"attack.positions={value!r} is invalid: {hint}")
    pairs = list(value)
    if kind == "onepixel" and len(pairs) == 2 and not any(is_sequence(p) for p in pairs):
        pairs = [pairs]
    out = []
    for pair in pairs:
        if not is_sequence(pair) or len(pair) != 2:
            raise ConfigError(f"attack.positions entry {pair!r} is not a [row, col] pair: {hint}")
        r, c = pair
        if isinstance(r, bool) or isinstance(c, bool) or not all(isinstance(v, int) or hasattr(v, "__index__") for v in (r, c)):
            raise ConfigError(f"attack.positions entry {list(pair)!r} must hold integers: {hint}")
        r, c = int(r), int(c)
        if not (0 <= r < h and 0 <= c < w):
            raise ConfigError(f"attack.positions entry [{r}, {c}] lies outside the {h}x{w} image: {hint}")
        out.append((r, c))
    if len(out) != want or len(set(out)) != len(out):
        raise ConfigError(f"attack.positions={[list(p) for p in out]} is invalid for {kind}: {hint}, all distinct")
    return out


def pixel_pattern(image_shape, positions, delta: float) -> torch.Tensor:
    """Zero image with ``delta / sqrt(len(positions) * C)`` on every channel of each position."""
    c, h, w = image_shape
    pattern = torch.zeros(c, h, w, dtype=torch.float32)
    value = delta / math.sqrt(len(positions) * c)
    for r, col in positions:
        pattern[:, r, col] = value
    return pattern


def is_sequence(value: Any) -> bool:
    return not isinstance(value, (str, bytes)) and hasattr(value, "__iter__") and hasattr(value, "__len__")


def build_pixel_trigger(kind: str, image_shape, delta: float, positions=None) -> AdditiveTrigger:
    """The ``kind`` (onepixel / fourpixel) trigger of L2 size ``delta`` at ``positions`` (None: defaults)."""
    if delta <= 0:
        raise ConfigError(f"attack.delta={delta} is invalid: use an L2 size > 0")
    pixels = default_positions(kind, image_shape) if positions is None else parse_positions(positions, kind, image_shape)
    trigger = AdditiveTrigger(kind, pixel_pattern(image_shape, pixels, delta), delta, clip=True)
    trigger.positions = pixels
    return trigger


@dataclass
class PixelSettings(AttackSettings):
    """RAB's pixel triggers: ``delta`` is the L2 size; ``positions`` null = the defaults above."""

    kind: ClassVar[str] = ""
    delta: float = MISSING
    positions: Optional[Any] = MISSING

    def check(self, run) -> None:
        self.require_range("delta", 0.0, None, low_open=True)
        super().check(run)

    def trigger(self, image_shape):
        return build_pixel_trigger(self.kind, image_shape, self.delta, self.positions)


@dataclass
class OnePixelSettings(PixelSettings):
    kind: ClassVar[str] = "onepixel"


@dataclass
class FourPixelSettings(PixelSettings):
    kind: ClassVar[str] = "fourpixel"
