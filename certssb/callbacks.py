"""Hydra callback: a multirun whose jobs failed on bad input ends with one line and exit 1."""

from __future__ import annotations

import logging
import sys
from typing import Any

from hydra.experimental.callback import Callback

log = logging.getLogger("certssb")


class FailedJobsCallback(Callback):
    """Collects jobs that returned ``{"status": "failed"}`` and reports them after the sweep."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.total = 0

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        self.total += 1
        try:
            value = job_return.return_value
        except Exception:  # a crashed job: Hydra reports it itself
            return
        if isinstance(value, dict) and value.get("status") == "failed":
            self.failed.append(f"{value.get('output_dir')}: {value.get('error')}")

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        if self.failed:
            print(f"error: {len(self.failed)} of {self.total} jobs failed; first: {self.failed[0]}", file=sys.stderr)
            sys.exit(1)
