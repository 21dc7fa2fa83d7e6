"""Puts certssb's ``conf/`` and its ``experiment`` group on Hydra's search path (and registers
the resolver of the ``--help`` template, :mod:`certssb.helptext`).

``conf/`` is appended too, so primary configs from another directory (``multirun_sweeps/``, a
user's config dir) can extend ``config`` and pick certssb's options. The repository root itself
is never on the search path.
"""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from certssb.helptext import register_resolvers

# the --help template (conf/config.yaml) uses ${certssb_help:...}: every process that loads
# certssb's configs through Hydra can resolve it, not only `python -m certssb.run`
register_resolvers()


class CertSSBSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from certssb.resources import conf_dir, experiments_dir

        search_path.append(provider="certssb", path=f"file://{conf_dir()}")
        search_path.append(provider="certssb", path=f"certssb-experiments://{experiments_dir()}")
