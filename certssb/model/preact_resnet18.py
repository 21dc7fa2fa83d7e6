"""PreAct-ResNet-18, BackdoorBench's default network (He et al. 2016, "Identity Mappings in Deep
Residual Networks"; the CIFAR variant of kuangliu/pytorch-cifar that BackdoorBench and WaNet use).

Stem ``conv3x3(C -> 64, stride 1)``, four stages of two pre-activation basic blocks with 64, 128,
256, 512 filters (strides 1, 2, 2, 2; a 1x1 convolution on the shortcut where the shape changes),
global average pooling and one linear layer; no BatchNorm-ReLU after the last block, as in
BackdoorBench. The adaptive pooling and the stride-1 stem accept any input of at least 1x1
(8x8 digits: 8 -> 4 -> 2 -> 1; 32x32 CIFAR: 32 -> 4). ``stem="imagenet"`` swaps in
``conv7x7 stride 2 + maxpool 3x3 stride 2`` (torchvision's stem) for 224-px inputs, where the
CIFAR stem would run the first stage at full resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import MISSING
from torch import nn

from certssb.errors import ConfigError

from .preact_resnet import PreActBlock
from .settings import ModelSettings

STEMS = ("cifar", "imagenet")


class PreActResNet18(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, stem: str = "cifar", widths=(64, 128, 256, 512),
                 blocks_per_stage=(2, 2, 2, 2)):
        super().__init__()
        if stem == "cifar":
            self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        else:
            self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False),
                                      nn.MaxPool2d(3, 2, 1))
        blocks, planes = [], widths[0]
        for stage, (width, count) in enumerate(zip(widths, blocks_per_stage)):
            for b in range(count):
                blocks.append(PreActBlock(planes, width, 2 if stage > 0 and b == 0 else 1))
                planes = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.pool(self.blocks(self.stem(x))).flatten(1))


def preact_resnet18(input_shape, num_classes: int, stem: str = "cifar") -> PreActResNet18:
    """PreAct-ResNet-18 for inputs ``(C, H, W)`` and ``num_classes`` logits.

    Knobs (BackdoorBench defaults): ``stem: cifar`` (3x3 stride-1 stem; ``imagenet``: 7x7 stride 2 +
    max pooling, for large inputs); check: ``model.stem must be one of cifar, imagenet``. Fixed by
    the architecture: widths 64/128/256/512, two blocks per stage (11.2M parameters at 10 classes).
    Has BatchNorm, so members train one at a time (no ``torch.func`` vectorisation).
    """
    if stem not in STEMS:
        raise ConfigError(f"model.stem must be one of {', '.join(STEMS)}; got {stem!r}")
    c, h, w = (int(v) for v in input_shape)
    if min(c, h, w) < 1 or isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"preact_resnet18 needs input (C, H, W) >= 1 and num_classes >= 2; got {input_shape}, {num_classes}")
    return PreActResNet18(c, num_classes, stem)


@dataclass
class PreActResNet18Settings(ModelSettings):
    """``model=preact_resnet18`` (``conf/model/preact_resnet18.yaml``): the stem is the one knob."""

    stem: str = MISSING

    def check(self, run) -> None:
        self.require_choice("stem", STEMS)
        super().check(run)

    def build(self, input_shape, num_classes: int) -> nn.Module:
        return preact_resnet18(input_shape, num_classes, self.stem)
