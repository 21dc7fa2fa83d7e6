"""Model zoo: ``build_model(cfg, input_shape, num_classes)`` and ``model_factory``.

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

MODEL_NAMES = ("mnist_cnn", "preact_resnet32", "digits_cnn", "mlp")

__all__ = ["MODEL_NAMES", "build_model", "model_factory", "has_batchnorm",
           "DigitsCNN", "MLP", "MnistCNN", "PreActResNet"]


def _get(cfg, key, default):
    try:
        value = getattr(cfg, key)
    except (AttributeError, KeyError):
        return default
    return default if value is None else value


def _check_shape(input_shape) -> tuple[int, int, int]:
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ConfigError(f"input_shape must be (C, H, W) integers, got {input_shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"input_shape must be (C, H, W) with positive sizes, got {input_shape!r}")
    return shape


def build_model(cfg, input_shape, num_classes: int) -> nn.Module:
    """Build the model named ``cfg.name`` for inputs ``input_shape = (C, H, W)``."""
    name = _get(cfg, "name", None)
    shape = _check_shape(input_shape)
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    c, h, w = shape
    if name == "mnist_cnn":
        if min(h, w) < 16:
            raise ConfigError(f"mnist_cnn needs images of at least 16x16, got {h}x{w}; use digits_cnn or mlp")
        return MnistCNN(shape, num_classes, hidden=int(_get(cfg, "hidden_fc", 512)))
    if name == "preact_resnet32":
        return PreActResNet(c, num_classes, blocks_per_stage=int(_get(cfg, "blocks_per_stage", 5)),
                            widths=tuple(_get(cfg, "widths", (16, 32, 64))))
    if name == "digits_cnn":
        if min(h, w) < 1:
            raise ConfigError(f"digits_cnn needs non-empty images, got {h}x{w}")
        return DigitsCNN(shape, num_classes, channels=tuple(_get(cfg, "channels", (16, 32))),
                         hidden=int(_get(cfg, "hidden_fc", 64)))
    if name == "mlp":
        hidden = _get(cfg, "hidden", [128])
        if isinstance(hidden, int):
            hidden = [hidden]
        return MLP(shape, num_classes, hidden=[int(v) for v in hidden])
    raise ConfigError(f"unknown model name {name!r}; allowed: {', '.join(MODEL_NAMES)}")


def model_factory(cfg, input_shape, num_classes: int) -> Callable[[], nn.Module]:
    """A zero-argument callable returning a fresh model (validated once, now)."""
    build_model(cfg, input_shape, num_classes)  # fail early on bad config
    shape = _check_shape(input_shape)

    def factory() -> nn.Module:
        return build_model(cfg, shape, num_classes)

    return factory


def has_batchnorm(model: nn.Module) -> bool:
    """True when the model has BatchNorm layers (running statistics buffers)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
