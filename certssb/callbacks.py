"""Hydra callback: a multirun with a failed job ends with one line and exit 1, on every launcher."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from certssb.sweep_status import failure_line, job_folders, job_outcome


class FailedJobsCallback(Callback):
    """After the sweep, reads every job's ``summary.json`` (see :mod:`certssb.sweep_status`).

    Runs in the launching process; the jobs may have run elsewhere (``certssb_gpu``, SLURM).
    Prints ``error: K of M jobs failed; first: ...`` on stderr and exits 1 if any job failed.
    """

    def __init__(self) -> None:
        self.started: float | None = None

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        self.started = time.time()

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        folders = job_folders(Path(str(config.hydra.sweep.dir)), since=self.started)
        line = failure_line([job_outcome(f) for f in folders])
        if line is not None:
            print(f"error: {line}", file=sys.stderr)
            sys.exit(1)
