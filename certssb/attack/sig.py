"""SIG (Barni, Kallas & Tondi 2019, "A new backdoor attack in CNNs by training set corruption
without label poisoning", ICIP): a horizontal sinusoid added to the image and clipped to [0, 1].

``v[i, j] = delta * sin(2 pi j f / W)`` for every row i and channel, with ``delta = 40/255`` and
``f = 6`` (the paper's and BackdoorBench's defaults on the 0..255 scale, here in [0, 1] units).
SIG is a clean-label attack: only target-class training samples get the signal and their labels
stay unchanged (``LabelPolicy.CLEAN_LABEL``). The pattern's L2 norm bounds every realised size;
clipping makes the realised size of a sample smaller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from omegaconf import MISSING

from .base import AdditiveTrigger
from .checks import check_real
from .policy import LabelPolicy
from .settings import AttackSettings


def sig_pattern(image_shape, delta: float = 40 / 255, frequency: float = 6.0) -> torch.Tensor:
    """The signal ``[C, H, W]``: ``delta * sin(2 pi j frequency / W)`` in column j, equal across rows and channels."""
    c, h, w = (int(v) for v in image_shape)
    cols = torch.arange(w, dtype=torch.float64)
    row = float(delta) * torch.sin(2 * math.pi * cols * float(frequency) / w)
    return row.view(1, 1, w).expand(c, h, w).to(torch.float32).clone()


class SIGTrigger(AdditiveTrigger):
    """``clip(x + v, 0, 1)``; ``delta`` (the L2 norm of ``v``) bounds the realised size."""

    def __init__(self, pattern: torch.Tensor, amplitude: float, frequency: float):
        super().__init__("sig", pattern, float(pattern.double().norm()), clip=True)
        self.amplitude = float(amplitude)
        self.frequency = float(frequency)

    def __repr__(self) -> str:
        return f"SIGTrigger(amplitude={self.amplitude}, frequency={self.frequency}, image_shape={self.image_shape})"


def check_sig(delta: float, frequency: float) -> None:
    """One-line ``ConfigError`` for each knob out of range."""
    check_real("delta", delta, 0.0, 1.0, low_open=True)
    check_real("frequency", frequency, 0.0, low_open=True)


def sig_trigger(image_shape, delta: float = 40 / 255, frequency: float = 6.0) -> SIGTrigger:
    """The SIG trigger for images ``(C, H, W)``.

    Knobs (defaults from Barni et al. 2019 / BackdoorBench):

    - ``delta: 0.156862745`` (40/255): signal amplitude in [0, 1] units; check:
      ``attack.delta must be in (0, 1]``.
    - ``frequency: 6``: periods across the image width; check: ``attack.frequency must be in (0, inf]``.

    Poisoning: clean-label (``LabelPolicy.CLEAN_LABEL``): ``round(rate * n_train)`` target-class
    samples get the signal, labels unchanged; BackdoorBench's rate 0.1 (at most the target class).
    """
    check_sig(delta, frequency)
    return SIGTrigger(sig_pattern(image_shape, float(delta), float(frequency)), float(delta), float(frequency))


@dataclass
class SIGSettings(AttackSettings):
    """``attack=sig``: knobs as in :func:`sig_trigger`; clean-label poisoning (``poison_rate`` of
    the training set, taken from the target class: at most its share, else a one-line error)."""

    delta: float = MISSING
    frequency: float = MISSING

    def check(self, run) -> None:
        check_sig(self.delta, self.frequency)
        super().check(run)

    def label_policy(self) -> LabelPolicy:
        return LabelPolicy.CLEAN_LABEL

    def trigger(self, image_shape):
        return sig_trigger(image_shape, self.delta, self.frequency)
