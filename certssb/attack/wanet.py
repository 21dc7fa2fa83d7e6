"""WaNet (Nguyen & Tran 2021, "WaNet: Imperceptible Warping-based Backdoor Attack", ICLR):
the trigger is a fixed smooth warping field applied with ``grid_sample``.

The field follows the authors' code (and BackdoorBench's): a ``k x k`` grid of uniform values in
[-1, 1] per axis, normalised by its mean absolute value, upsampled bicubically to the image size
(``align_corners=True``), scaled by ``s`` and divided by the image size, added to the identity
sampling grid, multiplied by ``grid_rescale`` and clamped to [-1, 1]. For non-square images the
x (column) offset is divided by W and the y (row) offset by H (the authors divide both by the
height on their square images). In the noise ("cross") mode, further training samples get the
warp plus a per-sample random offset uniform in [-1, 1] / size on each axis and KEEP their labels,
so the network learns that only the exact warp means the target class.

Realised sizes depend on the image: ``||warp(x) - x||_2`` per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from omegaconf import MISSING

from certssb.seeding import make_generator

from .base import Trigger
from .checks import check_int, check_real
from .settings import AttackSettings


def _scale(h: int, w: int) -> torch.Tensor:
    return torch.tensor([1.0 / w, 1.0 / h], dtype=torch.float32)  # (x, y) order of grid_sample


def warping_grid(image_shape, k: int = 4, s: float = 0.5, grid_rescale: float = 1.0,
                 pattern_seed: int = 0) -> torch.Tensor:
    """The sampling grid ``[1, H, W, 2]`` (x, y in [-1, 1]) of WaNet's fixed warp.

    The random control points come from ``make_generator(pattern_seed, "wanet-grid")``.
    """
    _, h, w = (int(v) for v in image_shape)
    gen = make_generator(pattern_seed, "wanet-grid")
    ins = torch.rand(1, 2, k, k, generator=gen) * 2 - 1
    ins = ins / ins.abs().mean()
    noise_grid = F.interpolate(ins, size=(h, w), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
    gy, gx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    identity = torch.stack((gx, gy), dim=2)[None]
    grid = (identity + s * noise_grid * _scale(h, w)) * grid_rescale
    return grid.clamp(-1, 1)


class WaNetTrigger(Trigger):
    """``apply(x)``: warp every image with the fixed grid; ``apply_cross(x, generator)``: the noise mode."""

    name = "wanet"

    def __init__(self, image_shape, grid: torch.Tensor, k: int, s: float, grid_rescale: float):
        super().__init__(image_shape)
        self.grid = grid.to(torch.float32)
        self.k, self.s, self.grid_rescale = int(k), float(s), float(grid_rescale)

    def _warp(self, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        out = F.grid_sample(x, grid.to(device=x.device, dtype=x.dtype), mode="bilinear",
                            padding_mode="zeros", align_corners=True)
        return out.clamp_(0.0, 1.0)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if x.shape[0] == 0:
            return x.clone()
        return self._warp(x, self.grid.expand(x.shape[0], -1, -1, -1))

    def apply_cross(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The noise mode: the warp plus a per-sample random grid offset (labels are kept)."""
        self._check(x)
        n, _, h, w = x.shape
        if n == 0:
            return x.clone()
        offset = (torch.rand(n, h, w, 2, generator=generator) * 2 - 1) * _scale(h, w)
        grid = (self.grid.expand(n, -1, -1, -1) + offset).clamp(-1, 1)
        return self._warp(x, grid)

    def __repr__(self) -> str:
        return f"WaNetTrigger(k={self.k}, s={self.s}, grid_rescale={self.grid_rescale}, image_shape={self.image_shape})"


def check_wanet(k: int, s: float, grid_rescale: float, cross_ratio: float, pattern_seed: int) -> None:
    """One-line ``ConfigError`` for each knob out of range."""
    check_int("k", k, 2)
    check_real("s", s, 0.0, low_open=True)
    check_real("grid_rescale", grid_rescale, 0.0, low_open=True)
    check_real("cross_ratio", cross_ratio, 0.0)
    check_int("pattern_seed", pattern_seed)


def wanet_trigger(image_shape, k: int = 4, s: float = 0.5, grid_rescale: float = 1.0, cross_ratio: float = 2.0,
                  pattern_seed: int = 0) -> WaNetTrigger:
    """The WaNet trigger for images ``(C, H, W)``.

    Knobs (defaults from Nguyen & Tran 2021 / BackdoorBench):

    - ``k: 4``: control-grid size; check: ``attack.k must be an integer in [2, inf]``.
    - ``s: 0.5``: warping strength; check: ``attack.s must be in (0, inf]``.
    - ``grid_rescale: 1.0``: scale of the whole sampling grid; check: > 0.
    - ``cross_ratio: 2.0``: noise-mode samples per poisoned sample (0 turns the noise mode off);
      used by ``poison_with_policy(..., extras=PoisonExtras(cross=trigger.apply_cross, cross_ratio=...))``; check: >= 0.
    - ``pattern_seed: 0``: seed of the control grid; check: an integer.

    Poisoning: all-to-one (``LabelPolicy.ALL_TO_ONE``); BackdoorBench's rate 0.1, target 0.
    """
    check_wanet(k, s, grid_rescale, cross_ratio, pattern_seed)
    grid = warping_grid(image_shape, int(k), float(s), float(grid_rescale), int(pattern_seed))
    return WaNetTrigger(image_shape, grid, int(k), float(s), float(grid_rescale))


@dataclass
class WaNetSettings(AttackSettings):
    """``attack=wanet``: knobs as in :func:`wanet_trigger`; all-to-one poisoning plus the noise
    mode (``cross_ratio`` x the poisoned count of further samples, labels kept; 0 turns it off)."""

    k: int = MISSING
    s: float = MISSING
    grid_rescale: float = MISSING
    cross_ratio: float = MISSING
    pattern_seed: int = MISSING

    def check(self, run) -> None:
        check_wanet(self.k, self.s, self.grid_rescale, self.cross_ratio, self.pattern_seed)
        super().check(run)

    def trigger(self, image_shape):
        return wanet_trigger(image_shape, self.k, self.s, self.grid_rescale, self.cross_ratio, self.pattern_seed)

    def poison_extras(self, splits, trigger, seed: int, context):
        from .poisoning import PoisonExtras

        return PoisonExtras(cross=trigger.apply_cross, cross_ratio=self.cross_ratio)
