"""Experiment loggers (config group ``logger``): ``none`` and ``wandb``.

Local outputs are always written by :mod:`certssb.results`; a logger only mirrors them.
"""

from __future__ import annotations

from pathlib import Path

from certssb.logger.base import LoggerSettings, NullLogger, RunLogger


def open_logger(run, output_dir: Path, context: dict | None = None) -> RunLogger:
    """The logger of the run's ``logger`` option; use it as a context manager."""
    return run.logger.open(run, output_dir, context or {})


__all__ = ["LoggerSettings", "NullLogger", "RunLogger", "open_logger"]
