"""The paper's MNIST CNN: conv5x5-16, ReLU, pool, conv5x5-32, ReLU, pool, fc-512, ReLU, fc-out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from omegaconf import MISSING

import torch
from torch import nn

from .settings import ModelSettings


class MnistCNN(nn.Module):
    def __init__(self, input_shape, num_classes: int, hidden: int = 512):
        super().__init__()
        c, h, w = input_shape
        self.features = nn.Sequential(
            nn.Conv2d(c, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        fh, fw = (h - 4) // 2, (w - 4) // 2
        fh, fw = (fh - 4) // 2, (fw - 4) // 2
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * fh * fw, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@dataclass
class MnistCNNSettings(ModelSettings):
    min_hw: ClassVar[int] = 16
    hidden_fc: int = MISSING

    def build(self, input_shape, num_classes: int) -> nn.Module:
        return MnistCNN(input_shape, num_classes, hidden=self.hidden_fc)
