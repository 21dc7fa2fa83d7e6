"""Progress: a tqdm bar on a terminal, plain log lines elsewhere (no carriage returns in logs)."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("certssb")


def on_terminal(stream=None) -> bool:
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


class LogProgress:
    """tqdm's ``update``/``close``/iteration, reported as log lines at every ``step`` of 10%."""

    def __init__(self, iterable=None, total: int | None = None, desc: str = "", unit: str = "it",
                 enabled: bool = True):
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.desc, self.unit, self.enabled = desc, unit, enabled
        self.n = 0
        self._next_tenth = 1

    def update(self, k: int = 1) -> None:
        self.n += k
        if not self.enabled or not self.total:
            return
        tenth = (10 * self.n) // self.total
        if tenth >= self._next_tenth:
            self._next_tenth = tenth + 1
            log.info("%s: %d/%d %s", self.desc, self.n, self.total, self.unit)

    def close(self) -> None:
        pass

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)


def progress_bar(iterable=None, *, total: int | None = None, desc: str = "", unit: str = "it",
                 enabled: bool = True, leave: bool = True):
    """A tqdm bar when ``enabled`` and stderr is a terminal; otherwise a :class:`LogProgress`
    (log lines when ``enabled``, silent when not)."""
    if enabled and on_terminal():
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave)
    return LogProgress(iterable, total=total, desc=desc, unit=unit, enabled=enabled)
