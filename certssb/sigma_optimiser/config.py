"""Validation of the ``sigma_optimiser`` config group.

Functions in this package only read the keys listed in :class:`SigmaSettings`, through attribute
access, so OmegaConf ``DictConfig`` objects and ``types.SimpleNamespace`` objects both work.
Missing keys (or keys set to ``None``) take the defaults below; ``sigma_0`` is required.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from certssb.errors import ConfigError

GROUP = "sigma_optimiser"
RULES = ("fixed", "sga", "released")

DEFAULTS = {
    "n_draws": 32,
    "lr": 0.04,
    "iterations": 100,
    "clip_low": 0.02,
    "clip_high": 0.98,
    "sigma_min": 0.05,
    "sigma_max": 1.0,
    "batch_size": 64,
    "device": None,
}


@dataclass(frozen=True)
class SigmaSettings:
    """Validated sigma-optimiser settings (plain Python values)."""

    name: str
    sigma_0: float
    n_draws: int = DEFAULTS["n_draws"]
    lr: float = DEFAULTS["lr"]
    iterations: int = DEFAULTS["iterations"]
    clip_low: float = DEFAULTS["clip_low"]
    clip_high: float = DEFAULTS["clip_high"]
    sigma_min: float | None = DEFAULTS["sigma_min"]
    sigma_max: float | None = DEFAULTS["sigma_max"]
    batch_size: int = DEFAULTS["batch_size"]
    device: str | None = None


def _read(cfg, key: str):
    try:
        value = getattr(cfg, key, None)
    except Exception as exc:  # e.g. omegaconf MissingMandatoryValue ('???')
        raise ConfigError(f"{GROUP}.{key} could not be read ({type(exc).__name__}); set it in the config") from None
    return value


def _float(cfg, key: str, required: bool = False) -> float | None:
    value = _read(cfg, key)
    if value is None:
        if required:
            raise ConfigError(f"{GROUP}.{key} is required; set it to a positive number")
        value = DEFAULTS.get(key)
        if value is None:
            return None
    if isinstance(value, bool):
        raise ConfigError(f"{GROUP}.{key} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{GROUP}.{key} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ConfigError(f"{GROUP}.{key} must be finite, got {value!r}")
    return out


def _int(cfg, key: str) -> int:
    value = _read(cfg, key)
    if value is None:
        value = DEFAULTS[key]
    if isinstance(value, bool):
        raise ConfigError(f"{GROUP}.{key} must be an integer, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        try:
            import numpy as np

            if isinstance(value, np.integer):
                value = int(value)
        except ImportError:  # pragma: no cover
            pass
    if not isinstance(value, int):
        raise ConfigError(f"{GROUP}.{key} must be an integer, got {value!r}")
    return value


def parse_sigma_config(cfg) -> SigmaSettings:
    """Read and validate ``cfg``; raise :class:`ConfigError` (one line, naming the key) if invalid.

    For ``fixed`` only ``name`` and ``sigma_0`` are read and checked (other keys are unused). For
    ``sga`` and ``released`` every key is checked, with the module defaults filling gaps.
    """
    if cfg is None:
        raise ConfigError(f"{GROUP} config is missing; choose one of {', '.join(RULES)}")
    name = _read(cfg, "name")
    if not isinstance(name, str) or name not in RULES:
        raise ConfigError(f"{GROUP}.name must be one of {', '.join(RULES)}, got {name!r}")

    sigma_0 = _float(cfg, "sigma_0", required=True)
    if sigma_0 <= 0:
        raise ConfigError(f"{GROUP}.sigma_0 must be > 0, got {sigma_0:g}")

    if name == "fixed":  # the box is not used (matches certssb.config: checked for sga/released only)
        return SigmaSettings(name=name, sigma_0=sigma_0, sigma_min=None, sigma_max=None)
    sigma_min = _float(cfg, "sigma_min")
    sigma_max = _float(cfg, "sigma_max")
    if sigma_min <= 0:
        raise ConfigError(f"{GROUP}.sigma_min must be > 0, got {sigma_min:g}")
    if sigma_max < sigma_min:
        raise ConfigError(f"{GROUP}.sigma_max must be >= sigma_min ({sigma_min:g}), got {sigma_max:g}")
    if sigma_0 < sigma_min:
        raise ConfigError(f"{GROUP}.sigma_0 must be >= sigma_min ({sigma_min:g}), got {sigma_0:g}")
    if sigma_0 > sigma_max:
        raise ConfigError(f"{GROUP}.sigma_0 must be <= sigma_max ({sigma_max:g}), got {sigma_0:g}")

    clip_low = _float(cfg, "clip_low")
    clip_high = _float(cfg, "clip_high")
    if not 0 < clip_low < 0.5:
        raise ConfigError(f"{GROUP}.clip_low must be in (0, 0.5), got {clip_low:g}")
    if not 0.5 < clip_high < 1:
        raise ConfigError(f"{GROUP}.clip_high must be in (0.5, 1), got {clip_high:g}")

    n_draws = _int(cfg, "n_draws")
    if n_draws < 1:
        raise ConfigError(f"{GROUP}.n_draws must be >= 1, got {n_draws}")
    iterations = _int(cfg, "iterations")
    if iterations < 0:
        raise ConfigError(f"{GROUP}.iterations must be >= 0, got {iterations}")
    lr = _float(cfg, "lr")
    if lr < 0:
        raise ConfigError(f"{GROUP}.lr must be >= 0, got {lr:g}")
    batch_size = _int(cfg, "batch_size")
    if batch_size < 1:
        raise ConfigError(f"{GROUP}.batch_size must be >= 1, got {batch_size}")

    device = _read(cfg, "device")
    if device is not None and not isinstance(device, str):
        device = str(device)

    return SigmaSettings(
        name=name,
        sigma_0=sigma_0,
        n_draws=n_draws,
        lr=lr,
        iterations=iterations,
        clip_low=clip_low,
        clip_high=clip_high,
        sigma_min=sigma_min,
        sigma_max=sigma_max,
        batch_size=batch_size,
        device=device,
    )
