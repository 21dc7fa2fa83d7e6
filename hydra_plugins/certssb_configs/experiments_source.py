"""A config source that serves the top-level ``experiments/`` folder as the group ``experiment``.

``python -m certssb.run experiment=NAME`` then loads ``experiments/NAME.yaml`` (a bundle in the
global package). Only that one group is visible through this source, so Hydra never walks the
repository (a ``.venv/`` or ``outputs/`` there would make ``--help`` take minutes).
"""

from __future__ import annotations

import os
from typing import List, Optional

from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource

from hydra._internal.core_plugins.file_config_source import FileConfigSource

GROUP = "experiment"


class ExperimentsConfigSource(FileConfigSource):
    """``certssb-experiments://<dir>``: the yaml files of ``<dir>`` as the options of ``experiment``."""

    def __init__(self, provider: str, path: str) -> None:
        ConfigSource.__init__(self, provider=provider, path=path)

    @staticmethod
    def scheme() -> str:
        return "certssb-experiments"

    @staticmethod
    def _inner(config_path: str) -> Optional[str]:
        """``experiment/NAME`` -> ``NAME``; ``experiment`` -> ``""``; anything else -> None."""
        path = config_path.strip("/")
        if path == GROUP:
            return ""
        if path.startswith(GROUP + "/"):
            return path[len(GROUP) + 1:]
        return None

    def load_config(self, config_path: str) -> ConfigResult:
        inner = self._inner(config_path)
        if not inner:
            raise ConfigLoadError(f"Config not found : {config_path}")
        return FileConfigSource.load_config(self, inner)

    def available(self) -> bool:
        return os.path.isdir(self.path)

    def is_group(self, config_path: str) -> bool:
        if config_path.strip("/") == "":
            return True
        return self._inner(config_path) == ""

    def is_config(self, config_path: str) -> bool:
        inner = self._inner(config_path)
        return bool(inner) and FileConfigSource.is_config(self, inner)

    def list(self, config_path: str, results_filter: Optional[ObjectType]) -> List[str]:
        if config_path.strip("/") == "":
            return [GROUP] if results_filter in (None, ObjectType.GROUP) else []
        inner = self._inner(config_path)
        if inner != "":
            return []
        names = []
        for file in sorted(os.listdir(self.path)):
            if file.endswith(".yaml") and results_filter in (None, ObjectType.CONFIG):
                names.append(file[: -len(".yaml")])
        return names
