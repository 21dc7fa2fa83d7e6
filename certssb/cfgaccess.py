"""Reading config values the same way from a DictConfig, a SimpleNamespace or a dict."""

from __future__ import annotations

from typing import Any


def cfg_get(cfg: Any, key: str, default: Any = None) -> Any:
    """``cfg.key`` for a DictConfig, a SimpleNamespace or a dict; ``default`` if absent or null."""
    if isinstance(cfg, dict):
        value = cfg.get(key, default)
    else:
        value = getattr(cfg, key, default)
    return default if value is None else value
