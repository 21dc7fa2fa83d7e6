"""The range checks of attack knobs given as explicit arguments (the trigger builders' ``attack.<key>``
one-line errors): :mod:`certssb.config`'s checks, the one implementation every option uses."""

from __future__ import annotations

from certssb.config import check_choice as _choice
from certssb.config import check_int as _int
from certssb.config import check_range


def check_real(key: str, value, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float inside the interval (``attack.<key> must be in (low, high]; got v``)."""
    check_range(f"attack.{key}", value, low, high, low_open, high_open)
    return float(value)


def check_int(key: str, value, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (``attack.<key> must be an integer in ...``)."""
    return _int(f"attack.{key}", value, low, high)


def check_choice(key: str, value, choices) -> str:
    """``value`` if it is one of ``choices`` (the message lists them)."""
    return _choice(f"attack.{key}", value, choices)
