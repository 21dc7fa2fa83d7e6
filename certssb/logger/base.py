"""The logger interface and the ``none`` logger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from certssb.config import Option


class RunLogger:
    """A context manager that receives the run's summary; always closes its run on exit."""

    def __enter__(self) -> "RunLogger":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(failed=exc_type is not None)

    def log_summary(self, summary: dict) -> None:
        """Record the finished run's metrics and curves."""

    def close(self, failed: bool = False) -> None:
        """Finish the run (``failed`` marks it as crashed)."""


class NullLogger(RunLogger):
    """``logger=none``: nothing beyond the local files."""


@dataclass
class LoggerSettings(Option):
    """Base of the ``logger`` options: :meth:`open` returns the run's logger (a context manager)."""

    config_group: ClassVar[str] = "logger"

    def open(self, run, output_dir, context: dict) -> RunLogger:
        return NullLogger()
