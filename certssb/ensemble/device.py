"""Device selection."""

from __future__ import annotations

import torch

from certssb.errors import ConfigError


def resolve_device(name=None) -> torch.device:
    """``'auto'`` (or None) -> ``cuda`` when available, else ``cpu``; otherwise the named device."""
    if isinstance(name, torch.device):
        dev = name
    elif name is None or str(name).lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(str(name))
        except (RuntimeError, ValueError):
            raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use device=auto or cpu")
    return dev
