"""RAB's blending trigger: a fixed Gaussian pattern of L2 norm ``delta``, added WITHOUT clipping.

The pattern is ``randn(C, H, W)`` from ``make_generator(pattern_seed, "blending-pattern")``
(``attack.pattern_seed``, default 0), rescaled to norm ``delta``. It does not depend on the run
seed, so every run and every seed attacks with the same pattern, as in RAB. Because nothing is
clipped, triggered images may leave [0, 1] and the realised size is exactly ``delta``.
"""

from __future__ import annotations

import torch

from dataclasses import dataclass

from omegaconf import MISSING

from certssb.errors import ConfigError
from certssb.seeding import make_generator

from .base import AdditiveTrigger
from .settings import AttackSettings


def blending_pattern(image_shape, delta: float, pattern_seed: int = 0) -> torch.Tensor:
    gen = make_generator(pattern_seed, "blending-pattern")
    noise = torch.randn(tuple(image_shape), generator=gen, dtype=torch.float64)
    return (noise * (delta / noise.norm())).to(torch.float32)


def build_blending_trigger(image_shape, delta: float, pattern_seed: int = 0) -> AdditiveTrigger:
    if delta <= 0:
        raise ConfigError(f"attack.delta={delta} is invalid: use an L2 size > 0")
    return AdditiveTrigger("blending", blending_pattern(image_shape, delta, pattern_seed), delta, clip=False)


@dataclass
class BlendingSettings(AttackSettings):
    delta: float = MISSING
    pattern_seed: int = MISSING

    def check(self, run) -> None:
        self.require_range("delta", 0.0, None, low_open=True)
        super().check(run)

    def trigger(self, image_shape):
        return build_blending_trigger(image_shape, self.delta, self.pattern_seed)
