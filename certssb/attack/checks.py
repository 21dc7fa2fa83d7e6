"""One-line range checks for attack knobs given as explicit arguments (``ConfigError`` on failure)."""

from __future__ import annotations

import math
import numbers

from certssb.errors import ConfigError


def _is_real(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(float(value))


def check_real(key: str, value, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float inside the interval; the message reads ``attack.<key> must be in (low, high]; got v``."""
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    interval = f"{lo}{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}{hi}"
    if not _is_real(value):
        raise ConfigError(f"attack.{key} must be a finite number in {interval}; got {value!r}")
    v = float(value)
    if low is not None and (v < low or (low_open and v == low)):
        raise ConfigError(f"attack.{key} must be in {interval}; got {value!r}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ConfigError(f"attack.{key} must be in {interval}; got {value!r}")
    return v


def check_int(key: str, value, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``; the message reads ``attack.<key> must be an integer in ...``."""
    interval = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"attack.{key} must be an integer in {interval}; got {value!r}")
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        raise ConfigError(f"attack.{key} must be an integer in {interval}; got {value!r}")
    return v


def check_choice(key: str, value, choices) -> str:
    """``value`` if it is one of ``choices``; the message lists them."""
    if value not in tuple(choices):
        raise ConfigError(f"attack.{key} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value
