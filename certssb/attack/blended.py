"""Blended (Chen et al. 2017, "Targeted Backdoor Attacks on Deep Learning Systems Using Data
Poisoning"): the triggered image is the alpha blend ``(1 - alpha) * x + alpha * pattern``.

Not RAB's ``blending`` (an additive Gaussian pattern of fixed L2 size, ``blending.py``): this is
the attack BackdoorBench and BackdoorBox call ``blended``. Their default pattern is a bundled
photograph (Hello Kitty); certssb ships no image assets, so the pattern is a seeded uniform random
image (``random``) or a procedural black-and-white checkerboard (``checkerboard``). The result
stays in [0, 1] when ``x`` and the pattern do, and the realised size of one sample is
``alpha * ||pattern - x||_2`` (it depends on the image).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import MISSING

from certssb.errors import ConfigError
from certssb.seeding import make_generator

from .base import Trigger
from .checks import check_choice, check_int, check_real
from .settings import AttackSettings

PATTERNS = ("random", "checkerboard")


def blended_pattern(image_shape, pattern: str = "random", pattern_seed: int = 0, cell: int = 1) -> torch.Tensor:
    """The blend image ``[C, H, W]`` in [0, 1]: seeded uniform noise, or a checkerboard of ``cell``-px squares.

    ``random`` draws from ``make_generator(pattern_seed, "blended-pattern")``, so it depends on
    ``pattern_seed`` and the image shape only (never on the run seed).
    """
    c, h, w = (int(s) for s in image_shape)
    if pattern == "random":
        return torch.rand(c, h, w, generator=make_generator(pattern_seed, "blended-pattern"))
    if pattern == "checkerboard":
        rows = torch.arange(h).view(h, 1) // cell
        cols = torch.arange(w).view(1, w) // cell
        return ((rows + cols) % 2).to(torch.float32).expand(c, h, w).clone()
    raise ConfigError(f"attack.pattern={pattern!r} is unknown: use one of {', '.join(PATTERNS)}")


class BlendedTrigger(Trigger):
    """``apply(x) = (1 - alpha) * x + alpha * pattern`` (no clipping needed for inputs in [0, 1])."""

    name = "blended"

    def __init__(self, pattern: torch.Tensor, alpha: float):
        super().__init__(pattern.shape)
        self.pattern = pattern.to(torch.float32)
        self.alpha = float(alpha)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        pattern = self.pattern.to(device=x.device, dtype=x.dtype)
        return torch.lerp(x, pattern.expand_as(x), self.alpha)

    def __repr__(self) -> str:
        return f"BlendedTrigger(alpha={self.alpha}, image_shape={self.image_shape})"


def check_blended(alpha: float, pattern: str, pattern_seed: int, cell: int) -> None:
    """One-line ``ConfigError`` for each knob out of range."""
    check_real("alpha", alpha, 0.0, 1.0, low_open=True)
    check_choice("pattern", pattern, PATTERNS)
    check_int("pattern_seed", pattern_seed)
    check_int("cell", cell, 1)


def blended_trigger(image_shape, alpha: float = 0.2, pattern: str = "random", pattern_seed: int = 0,
                    cell: int = 1) -> BlendedTrigger:
    """The Blended trigger for images ``(C, H, W)``.

    Knobs (defaults from Chen et al. 2017 / BackdoorBench):

    - ``alpha: 0.2``: blend ratio (BackdoorBench's ``attack_train_blended_alpha`` and
      ``attack_test_blended_alpha``); check: ``attack.alpha must be in (0, 1]``.
    - ``pattern: random``: ``random`` (seeded uniform image) or ``checkerboard``; check: one of these.
    - ``pattern_seed: 0``: seed of the ``random`` pattern; check: an integer.
    - ``cell: 1``: checkerboard square size in pixels; check: an integer >= 1.

    Poisoning: all-to-one (``LabelPolicy.ALL_TO_ONE``), BackdoorBench's rate 0.1, target 0.
    """
    check_blended(alpha, pattern, pattern_seed, cell)
    return BlendedTrigger(blended_pattern(image_shape, pattern, pattern_seed, cell), float(alpha))


@dataclass
class BlendedSettings(AttackSettings):
    """``attack=blended``: knobs as in :func:`blended_trigger` (values in ``conf/attack/blended.yaml``)."""

    alpha: float = MISSING
    pattern: str = MISSING
    pattern_seed: int = MISSING
    cell: int = MISSING

    def check(self, run) -> None:
        check_blended(self.alpha, self.pattern, self.pattern_seed, self.cell)
        super().check(run)

    def trigger(self, image_shape):
        return blended_trigger(image_shape, self.alpha, self.pattern, self.pattern_seed, self.cell)
