"""Where the project's config trees live: ``conf/``, ``experiments/`` and ``multirun_sweeps/``.

In a source checkout (editable install, or ``PYTHONPATH``) they are the top-level folders next
to the package; an installed wheel carries copies under ``certssb/_data/`` (``setup.py`` copies
them at build time). The installed copy wins when both exist, so an installed certssb never
reads a stray ``conf/`` of the current environment.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
TREES = ("conf", "experiments", "multirun_sweeps")


def tree(name: str) -> Path:
    """The directory of config tree ``name`` (one of :data:`TREES`)."""
    if name not in TREES:
        raise ValueError(f"unknown config tree {name!r}; one of {', '.join(TREES)}")
    for candidate in (PACKAGE_DIR / "_data" / name, PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"certssb's {name}/ folder is missing (looked in {PACKAGE_DIR / '_data'} and {PACKAGE_DIR.parent})")


def conf_dir() -> Path:
    """The primary config directory (``conf/``)."""
    return tree("conf")


def experiments_dir() -> Path:
    """The experiment bundles (``experiments/``), served to Hydra as the ``experiment`` group."""
    return tree("experiments")


def sweeps_dir() -> Path:
    """The sweep definitions (``multirun_sweeps/``)."""
    return tree("multirun_sweeps")
