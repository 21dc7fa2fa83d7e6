"""Puts ``conf/`` and the repository root on Hydra's search path (``experiments/`` is a group).

With it, ``python -m certssb.run +experiments=mnist_onepixel_paper`` works from any directory,
and sweep files under ``multirun_sweeps/`` can list experiments in their defaults.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


def repository_root() -> Path:
    import certssb

    return Path(certssb.__file__).resolve().parent.parent


class CertSSBSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        root = repository_root()
        # conf/ too, so primary configs from another dir (multirun_sweeps/) can extend `config`.
        if (root / "conf").is_dir():
            search_path.append(provider="certssb", path=f"file://{root / 'conf'}")
        if (root / "experiments").is_dir():
            search_path.append(provider="certssb", path=f"file://{root}")
