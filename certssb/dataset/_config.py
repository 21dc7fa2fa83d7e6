"""Reading the ``dataset`` config group: attribute access with defaults, checked values."""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

from certssb.cfgaccess import cfg_get  # noqa: F401  (re-exported for the package)
from certssb.errors import ConfigError

#: Where datasets live when ``dataset.data_dir`` is null and ``CERTSSB_DATA_DIR`` is unset.
DEFAULT_DATA_DIR = "~/.cache/certssb/data"
DATA_DIR_ENV = "CERTSSB_DATA_DIR"


def optional_int(cfg: Any, key: str, minimum: int = 1) -> int | None:
    """An int >= ``minimum`` or None; anything else is a ConfigError naming ``dataset.<key>``."""
    value = cfg_get(cfg, key, None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise ConfigError(f"dataset.{key}={value!r} is invalid: use null or an integer >= {minimum}")
    return int(value)


def resolve_data_dir(cfg: Any) -> Path:
    """``dataset.data_dir``, else ``$CERTSSB_DATA_DIR``, else ``~/.cache/certssb/data`` (expanded)."""
    value = cfg_get(cfg, "data_dir", None) or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return Path(str(value)).expanduser()


def download_flag(cfg: Any) -> bool:
    value = cfg_get(cfg, "download", False)
    if not isinstance(value, bool):
        raise ConfigError(f"dataset.download={value!r} is invalid: use true or false")
    return value


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's text collapsed to one short line, for embedding in our messages."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
