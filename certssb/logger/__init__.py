"""Experiment loggers (config group ``logger``): ``none`` and ``wandb``.

Local outputs are always written by :mod:`certssb.results`; a logger only mirrors them.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from certssb.logger.base import NullLogger, RunLogger


def open_logger(cfg: DictConfig, output_dir: Path, context: dict | None = None) -> RunLogger:
    """The logger named by ``cfg.logger.name``; use it as a context manager."""
    if cfg.logger.name == "wandb":
        from certssb.logger.wandb_logger import WandbLogger

        return WandbLogger(cfg, output_dir, context or {})
    return NullLogger()


__all__ = ["NullLogger", "RunLogger", "open_logger"]
