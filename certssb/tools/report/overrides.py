"""Reading Hydra's files of a run: the command-line overrides (``.hydra/overrides.yaml``) and plain
values of the composed config (``.hydra/config.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import yaml

__all__ = ["config_value", "parse_overrides", "read_yaml"]


def _parse_value(text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if value is None and text.strip().lower() not in ("null", "~", ""):
        return text
    if isinstance(value, (list, dict)):
        return text  # keep lists/dicts readable and hashable
    return value


def parse_overrides(lines: Sequence[str]) -> dict[str, Any]:
    """``["+a.b=1", "model=mlp", "~x"]`` -> ``{"a.b": 1, "model": "mlp", "x": "<deleted>"}``."""
    out: dict[str, Any] = {}
    for line in lines or []:
        line = str(line).strip()
        if not line:
            continue
        if line.startswith("~"):
            key = line[1:].split("=", 1)[0]
            out[key] = "<deleted>"
            continue
        key, sep, value = line.partition("=")
        key = key.lstrip("+")
        if not sep:
            continue
        out[key] = _parse_value(value)
    return out


def read_yaml(path: Path) -> Any:
    """The file's YAML, or None when it is absent or unreadable."""
    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except (OSError, yaml.YAMLError):
        return None


def config_value(config: Any, key: str) -> Any:
    """A plain value at dotted ``key`` of a loaded config.yaml, else None."""
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, (dict, list)):
        if isinstance(node, dict) and isinstance(node.get("name"), (str, int, float)):
            return node["name"]  # a config group's chosen option usually carries its name
        return None
    if isinstance(node, str) and "${" in node:
        return None
    return node
