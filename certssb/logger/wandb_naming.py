"""W&B group and run names built from a sweep's overrides (pure functions of Hydra's values).

- The swept keys: overrides with a sweep value (``a=1,2``, ``range(...)``, ``choice(...)``,
  ``interval(...)``) plus the keys of a sweeper's search space (``hydra.sweeper.params``, as the
  Optuna sweeper uses); ``hydra.*`` keys are not swept parameters.
- Group of a multirun: ``"<swept keys joined by +> <sweep label>"``, e.g.
  ``sigma_optimiser+seed 2026-11-28/14-51-55``; the label (the sweep dir's name, with its date
  folder above when that is Hydra's ``YYYY-MM-DD``) keeps separate sweeps apart.
- Run name: the swept keys' values in this job (``sigma_optimiser=sga,seed=1``); a single run:
  its command-line overrides without ``logger*`` and ``hydra*`` keys, or None (W&B picks one).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Sequence

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_NAME = 96


def _parse(overrides: Sequence[str]):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides([str(o) for o in overrides])


def _internal(key: str) -> bool:
    return key == "hydra" or key.startswith("hydra.") or key.startswith("hydra/")


def swept_keys(sweep_overrides: Sequence[str], sweeper_params: dict | None = None) -> list[str]:
    """Keys that vary across the jobs of a sweep, in command-line order, then the sweeper's."""
    keys: list[str] = []
    for o in _parse(sweep_overrides or []):
        key = o.key_or_group
        if o.is_sweep_override() and not _internal(key) and key not in keys:
            keys.append(key)
    for key in (sweeper_params or {}):
        if not _internal(str(key)) and str(key) not in keys:
            keys.append(str(key))
    return keys


def sweep_label(sweep_dir: str | Path) -> str:
    """``multirun/2026-11-28/14-51-55`` -> ``2026-11-28/14-51-55``; ``runs/my_sweep`` -> ``my_sweep``."""
    path = Path(str(sweep_dir))
    if _DATE.match(path.parent.name):
        return f"{path.parent.name}/{path.name}"
    return path.name


def sweep_group(sweep_overrides: Sequence[str], sweeper_params: dict | None, sweep_dir: str | Path) -> str:
    """The default W&B group of a multirun's jobs (see the module docstring)."""
    keys = swept_keys(sweep_overrides, sweeper_params)
    label = sweep_label(sweep_dir)
    return f"{'+'.join(keys)} {label}" if keys else label


def _short(text: str) -> str:
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 3] + "..."


def run_name(job_overrides: Sequence[str], keys: Iterable[str] | None = None) -> str | None:
    """``key=value`` of ``keys`` in this job's overrides (all but logger/hydra ones when ``keys`` is None)."""
    parts = []
    wanted = None if keys is None else list(keys)
    for o in _parse(job_overrides or []):
        key = o.key_or_group
        if _internal(key) or key == "logger" or key.startswith("logger.") or key.startswith("logger/"):
            continue
        if wanted is not None and key not in wanted:
            continue
        text = o.input_line.lstrip("+~") if o.input_line else f"{key}={o.value()}"
        parts.append((wanted.index(key) if wanted is not None else len(parts), text))
    if not parts:
        return None
    return _short(",".join(text for _, text in sorted(parts)))
