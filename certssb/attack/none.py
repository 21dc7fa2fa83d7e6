"""``attack=none``: no poisoning; the triggered test sets equal the clean one."""

from __future__ import annotations

from dataclasses import dataclass

from .settings import AttackSettings


@dataclass
class NoAttackSettings(AttackSettings):
    def trigger(self, image_shape):
        return None
