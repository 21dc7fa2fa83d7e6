"""BadNets: a k x k patch in one corner REPLACES the pixels (all-to-one or all-to-all poisoning).

Defaults follow BackdoorBench: a 3x3 white patch (``color: [1.0]``) at the bottom-right corner.
``attack.color`` is a list of per-channel values in [0, 1] (one value is used for every
channel) or ``random``: a uniform random k x k x C pattern from
``make_generator(pattern_seed, "badnets-pattern")`` (independent of the run seed).

Label mode (knob ``mode``, default ``all_to_one`` as in BackdoorBench; check: ``attack.mode must
be one of all_to_one, all_to_all``): ``certssb.attack.policy.badnets_policy(mode)`` gives the
``LabelPolicy`` for ``poison_with_policy``. ``all_to_all`` poisons samples of every class and maps
label y to ``(y + 1) mod C``, for the poisoned training samples and for the test-time attack
success alike (``attack_labels``; ``attack.target`` is then unused); ``all_to_one`` relabels
non-target samples to ``target``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import MISSING

from certssb.errors import ConfigError
from certssb.seeding import make_generator

from .base import Trigger
from .pixel import is_sequence
from .policy import BADNETS_MODES, LabelPolicy, badnets_policy
from .settings import AttackSettings

CORNERS = ("bottom_right", "top_left", "top_right", "bottom_left")


class BadNetsTrigger(Trigger):
    name = "badnets"

    def __init__(self, image_shape, patch: torch.Tensor, corner: str):
        super().__init__(image_shape)
        _, h, w = self.image_shape
        k = int(patch.shape[-1])
        self.patch = patch.to(torch.float32)  # [C, k, k]
        self.patch_size = k
        self.corner = corner
        self.rows = slice(h - k, h) if corner.startswith("bottom") else slice(0, k)
        self.cols = slice(w - k, w) if corner.endswith("right") else slice(0, k)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        out = x.clone()
        out[:, :, self.rows, self.cols] = self.patch.to(device=x.device, dtype=x.dtype)
        return out

    def __repr__(self) -> str:
        return f"BadNetsTrigger(patch_size={self.patch_size}, corner={self.corner!r}, image_shape={self.image_shape})"


def build_badnets_trigger(image_shape, patch_size: int = 3, corner: str = "bottom_right", color: Any = (1.0,),
                          pattern_seed: int = 0) -> BadNetsTrigger:
    """A ``patch_size`` square of ``color`` (per-channel values, or ``"random"``) in ``corner``."""
    c, h, w = image_shape
    k = patch_size
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= min(h, w):
        raise ConfigError(f"attack.patch_size={k} is invalid: use 1..{min(h, w)} for {h}x{w} images")
    if corner not in CORNERS:
        raise ConfigError(f"attack.corner={corner!r} is unknown: use one of {', '.join(CORNERS)}")
    if isinstance(color, str):
        if color != "random":
            raise ConfigError(f"attack.color={color!r} is invalid: use a list of per-channel values in [0, 1] or 'random'")
        gen = make_generator(pattern_seed, "badnets-pattern")
        patch = torch.rand(c, k, k, generator=gen)
    else:
        values = list(color) if is_sequence(color) else [color]
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0.0 <= float(v) <= 1.0]
        if bad or len(values) not in (1, c):
            raise ConfigError(
                f"attack.color={values!r} is invalid: use 1 or {c} values in [0, 1] (one per channel) or 'random'"
            )
        per_channel = torch.tensor([float(v) for v in values], dtype=torch.float32).expand(c)
        patch = per_channel.view(c, 1, 1).expand(c, k, k).clone()
    return BadNetsTrigger(image_shape, patch, corner)


@dataclass
class BadNetsSettings(AttackSettings):
    patch_size: int = MISSING
    corner: str = MISSING
    color: Any = MISSING
    pattern_seed: int = MISSING
    mode: str = MISSING

    def check(self, run) -> None:
        self.require_choice("mode", BADNETS_MODES)
        super().check(run)

    def label_policy(self) -> LabelPolicy:
        return badnets_policy(self.mode)

    def check(self, run) -> None:
        self.require_choice("corner", CORNERS)
        super().check(run)

    def trigger(self, image_shape):
        return build_badnets_trigger(image_shape, self.patch_size, self.corner, self.color, self.pattern_seed)
