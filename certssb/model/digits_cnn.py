"""A small all-convolutional CNN for 8x8 digits.

conv3x3-16 stride2 pad1, ReLU, conv3x3-32 stride2 pad1, ReLU, fc-64, ReLU, fc-out (8x8 -> 4x4 -> 2x2).
Downsampling is done by strided convolutions instead of max pooling (Springenberg et al. 2015):
on CPU, pooling 8x8 maps costs more than the convolutions themselves, and the network (about 30k
multiply-adds per image) stays cheap enough that training many members is dominated by per-step
overhead, which vectorising over members removes. No BatchNorm, so groups of members can be
trained together with ``torch.func.vmap``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

from omegaconf import MISSING

import torch
from torch import nn

from .settings import ModelSettings


def _down(n: int) -> int:
    return (n + 1) // 2  # output size of a 3x3 conv with stride 2 and padding 1


class DigitsCNN(nn.Module):
    def __init__(self, input_shape, num_classes: int, channels=(16, 32), hidden: int = 64):
        super().__init__()
        c, h, w = input_shape
        c1, c2 = (int(v) for v in channels)
        self.features = nn.Sequential(
            nn.Conv2d(c, c1, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU(),
        )
        fh, fw = _down(_down(h)), _down(_down(w))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * fh * fw, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@dataclass
class DigitsCNNSettings(ModelSettings):
    channels: List[int] = MISSING
    hidden_fc: int = MISSING

    def build(self, input_shape, num_classes: int) -> nn.Module:
        return DigitsCNN(input_shape, num_classes, channels=tuple(self.channels), hidden=self.hidden_fc)
