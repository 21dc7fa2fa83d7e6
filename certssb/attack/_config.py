"""Reading the ``attack`` config group: attribute access with defaults, checked values."""

from __future__ import annotations

import math
import numbers
from typing import Any

from certssb.cfgaccess import cfg_get  # noqa: F401  (re-exported for the package)
from certssb.errors import ConfigError


def get_int(cfg: Any, key: str, default: int | None = None) -> int:
    value = cfg_get(cfg, key, default)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"attack.{key}={value!r} is invalid: use an integer")
    return int(value)


def get_float(cfg: Any, key: str, default: float | None = None) -> float:
    value = cfg_get(cfg, key, default)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ConfigError(f"attack.{key}={value!r} is invalid: use a finite number")
    return float(value)


def is_sequence(value: Any) -> bool:
    return not isinstance(value, (str, bytes)) and hasattr(value, "__iter__") and hasattr(value, "__len__")
