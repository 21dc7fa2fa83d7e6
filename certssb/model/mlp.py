"""A multi-layer perceptron on flattened inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

from omegaconf import MISSING

import math

import torch
from torch import nn

from .settings import ModelSettings


class MLP(nn.Module):
    def __init__(self, input_shape, num_classes: int, hidden=(128,)):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass
class MLPSettings(ModelSettings):
    hidden: List[int] = MISSING

    def build(self, input_shape, num_classes: int) -> nn.Module:
        return MLP(input_shape, num_classes, hidden=[int(h) for h in self.hidden])
