"""torchvision's ResNet-18 (He et al. 2016, "Deep Residual Learning for Image Recognition"), the
ImageNet-scale model of RAB and Cert-SSB (dogs vs cats, ImageNette at 224 px), with an optional
local weights file.

``resnet18(input_shape, num_classes, weights)`` builds ``torchvision.models.resnet18`` for ``C``
input channels and ``num_classes`` outputs. With ``weights`` (a path to a state dict saved with
``torch.save(model.state_dict(), path)``, e.g. torchvision's ImageNet weights downloaded
beforehand: nothing is fetched), the file is loaded with ``torch.load(weights_only=True)``; where
the file's first convolution (``conv1.weight``) or classifier (``fc.weight``, ``fc.bias``) has
another shape than the model's (3 vs C channels, 1000 vs num_classes classes), that layer keeps
its fresh initialisation and is listed in ``model.replaced_layers`` (and logged). Any other
missing, unexpected or mis-shaped key is an error naming the file.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from omegaconf import MISSING
from torch import nn

from certssb.errors import ConfigError

from .settings import ModelSettings

log = logging.getLogger(__name__)

ADAPTABLE = ("conv1.weight", "fc.weight", "fc.bias")
_REPORTED: set[str] = set()


def _read_state_dict(path: Path) -> dict:
    """The state dict in ``path`` (a fresh dict; the tensors are shared with a cache keyed by the
    file's path, size and modification time, so the members of an ensemble read the file once)."""
    if not path.is_file():
        raise ConfigError(f"model.weights={str(path)!r}: file not found (give a local state-dict file or null)")
    stat = path.stat()
    return dict(_cached_state_dict(str(path), stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=2)
def _cached_state_dict(path_str: str, size: int, mtime_ns: int) -> dict:
    path = Path(path_str)
    if not path.is_file():
        raise ConfigError(f"model.weights={str(path)!r}: file not found (give a local state-dict file or null)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors have many types; all mean "not a state dict"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"model.weights={str(path)!r} is not a loadable state dict ({first[:160]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"model.weights={str(path)!r} does not hold a state dict of tensors "
                          "(save it with torch.save(model.state_dict(), path))")
    return state


def load_resnet18_weights(model: nn.Module, path: str | Path) -> list[str]:
    """Load ``path`` into ``model`` (a torchvision ResNet-18); returns the replaced layers' names."""
    path = Path(path)
    state = _read_state_dict(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise ConfigError(f"model.weights={str(path)!r} does not match resnet18: {detail} "
                          f"({len(missing)} missing, {len(unexpected)} unexpected keys)")
    replaced = []
    for key, value in own.items():
        if state[key].shape == value.shape:
            continue
        if key not in ADAPTABLE:
            raise ConfigError(f"model.weights={str(path)!r} does not match resnet18: {key} has shape "
                              f"{list(state[key].shape)}, the model needs {list(value.shape)}")
        replaced.append(key)
        state[key] = value  # keep the fresh initialisation
    model.load_state_dict(state)
    layers = sorted({k.split(".")[0] for k in replaced})
    if layers and str(path) not in _REPORTED:  # once per file, not once per member
        _REPORTED.add(str(path))
        log.info("resnet18: %s from %s kept freshly initialised (shapes differ from the file's)",
                 ", ".join(layers), path)
    return layers


def resnet18(input_shape, num_classes: int, weights: str | None = None) -> nn.Module:
    """torchvision ResNet-18 for inputs ``(C, H, W)``, ``num_classes`` logits, optional local weights.

    Knobs: ``weights: null`` (a local state-dict file, or null for random initialisation; check:
    ``model.weights=...: file not found`` when absent, ``does not match resnet18`` when the keys or
    shapes disagree). The first convolution is rebuilt for ``C != 3`` input channels and the
    classifier for ``num_classes``; with a weights file those layers stay freshly initialised when
    the file's shapes differ (``model.replaced_layers``). Any input of at least 1x1 works (the
    7x7 stride-2 stem and max pooling shrink 8x8 digits to 2x2, then adaptive pooling); the
    architecture is meant for 224 px. Has BatchNorm (members train one at a time).
    """
    import torchvision

    c, h, w = (int(v) for v in input_shape)
    if min(c, h, w) < 1 or isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"resnet18 needs input (C, H, W) >= 1 and num_classes >= 2; got {input_shape}, {num_classes}")
    model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    if c != 3:
        model.conv1 = nn.Conv2d(c, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")  # torchvision's init
    model.replaced_layers = []
    if weights is not None:
        if not isinstance(weights, (str, Path)) or not str(weights):
            raise ConfigError(f"model.weights must be a file path or null; got {weights!r}")
        model.replaced_layers = load_resnet18_weights(model, weights)
    return model


@dataclass
class ResNet18Settings(ModelSettings):
    """``model=resnet18`` (``conf/model/resnet18.yaml``): ``weights`` is null or a local state-dict
    file (checked to exist when the config is parsed; its keys and shapes when the model is built)."""

    weights: Optional[str] = MISSING

    def check(self, run) -> None:
        if self.weights is not None and not Path(self.weights).expanduser().is_file():
            self.fail("weights", f"must be null or an existing local state-dict file; got {self.weights!r} (file not found)")
        super().check(run)

    def build(self, input_shape, num_classes: int) -> nn.Module:
        weights = None if self.weights is None else str(Path(self.weights).expanduser())
        return resnet18(input_shape, num_classes, weights)

    def plain(self) -> dict:
        """The settings plus ``weights_sha256`` (the file's content), so that fingerprints and
        records change when the file does, not only its path."""
        out = super().plain()
        if self.weights is not None:
            path = Path(self.weights).expanduser()
            if path.is_file():
                stat = path.stat()
                out["weights_sha256"] = _file_digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        return out


@functools.lru_cache(maxsize=8)
def _file_digest(path_str: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path_str, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
