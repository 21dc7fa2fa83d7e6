"""Wall-clock timing of pipeline stages."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator


class StageTimer:
    """Accumulates seconds per named stage; ``timings()`` adds ``total_s``."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self._stages: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._stages[f"{name}_s"] = self._stages.get(f"{name}_s", 0.0) + time.perf_counter() - t0

    def timings(self) -> dict[str, float]:
        out = {k: round(v, 4) for k, v in self._stages.items()}
        out["total_s"] = round(time.perf_counter() - self._start, 4)
        return out
