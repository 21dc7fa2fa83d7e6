"""Pre-activation ResNet (He et al. 2016): 3 stages x 5 basic blocks, 16/32/64 filters (ResNet-32)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

from omegaconf import MISSING

import torch
import torch.nn.functional as F
from torch import nn

from .settings import ModelSettings


class PreActBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class PreActResNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, blocks_per_stage: int = 5,
                 widths=(16, 32, 64)):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        blocks = []
        planes = widths[0]
        for stage, width in enumerate(widths):
            for b in range(blocks_per_stage):
                stride = 2 if stage > 0 and b == 0 else 1
                blocks.append(PreActBlock(planes, width, stride))
                planes = width
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(planes)
        self.fc = nn.Linear(planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.conv(x))
        out = F.relu(self.bn(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


@dataclass
class PreActResNet32Settings(ModelSettings):
    blocks_per_stage: int = MISSING
    widths: List[int] = MISSING

    def build(self, input_shape, num_classes: int) -> nn.Module:
        return PreActResNet(input_shape[0], num_classes, blocks_per_stage=self.blocks_per_stage, widths=tuple(self.widths))
