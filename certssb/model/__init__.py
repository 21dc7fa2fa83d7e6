"""Model zoo: ``build_model(settings, input_shape, num_classes)`` and ``model_factory``.

Every model maps float inputs ``[n, C, H, W]`` to logits ``[n, num_classes]``; construction
is deterministic under ``torch.manual_seed``.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from certssb.errors import ConfigError
from certssb.model.digits_cnn import DigitsCNN
from certssb.model.mlp import MLP
from certssb.model.mnist_cnn import MnistCNN
from certssb.model.preact_resnet import PreActResNet
from certssb.model.preact_resnet18 import PreActResNet18
from certssb.model.settings import ModelSettings

__all__ = ["ModelSettings", "build_model", "model_factory", "has_batchnorm",
           "DigitsCNN", "MLP", "MnistCNN", "PreActResNet", "PreActResNet18"]


def _check_shape(input_shape) -> tuple[int, int, int]:
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ConfigError(f"input_shape must be (C, H, W) integers, got {input_shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"input_shape must be (C, H, W) with positive sizes, got {input_shape!r}")
    return shape


def build_model(settings: ModelSettings, input_shape, num_classes: int) -> nn.Module:
    """Build the model ``settings`` describe for inputs ``input_shape = (C, H, W)``."""
    shape = _check_shape(input_shape)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if min(shape[1:]) < settings.min_hw:
        raise ConfigError(f"{settings.name} needs images of at least {settings.min_hw}x{settings.min_hw}, "
                          f"got {shape[1]}x{shape[2]}; use digits_cnn or mlp")
    return settings.build(shape, num_classes)


def model_factory(settings, input_shape, num_classes: int) -> Callable[[], nn.Module]:
    """A zero-argument callable returning a fresh model (validated once, now)."""
    build_model(settings, input_shape, num_classes)  # fail early on bad config
    shape = _check_shape(input_shape)

    def factory() -> nn.Module:
        return build_model(settings, shape, num_classes)

    return factory


def has_batchnorm(model: nn.Module) -> bool:
    """True when the model has BatchNorm layers (running statistics buffers)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
