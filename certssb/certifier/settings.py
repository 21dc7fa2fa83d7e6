"""The ``certifier`` group's settings: bounds (soft/hard), alpha, radius grid and the memory."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, List, Optional

from omegaconf import MISSING

from certssb.config import Option

from .grid import GRID_SELECTS

BOUND_MODES = ("soft", "hard")
PB_MODES = ("auto", "complement", "bonferroni")
MEMORY_ORDERS = ("index", "shuffle")


@dataclass
class MemorySettings:
    """Storage-update certification (METHOD.md section 3, step 4)."""

    enabled: bool = MISSING
    order: str = MISSING        # index | shuffle (seeded by order_seed)
    order_seed: int = MISSING
    shared: bool = MISSING      # one memory for clean and triggered inputs


@dataclass
class CertifierSettings(Option):
    config_group: ClassVar[str] = "certifier"
    mode: str = MISSING
    alpha: float = MISSING
    pb_mode: str = MISSING
    selection_correction: bool = MISSING
    radii: List[float] = MISSING
    poison_eta: Optional[float] = MISSING   # null: the attack's own maximum per-sample size
    poison_eps: Optional[float] = MISSING
    grid_select: str = MISSING              # grid designs: radius | poison_count
    memory: MemorySettings = field(default_factory=MemorySettings)

    def check(self, run) -> None:
        self.require_choice("mode", BOUND_MODES)
        self.require_choice("pb_mode", PB_MODES)
        self.require_choice("grid_select", GRID_SELECTS)
        if self.memory.order not in MEMORY_ORDERS:
            self.fail("memory.order", f"must be one of {', '.join(MEMORY_ORDERS)}; got {self.memory.order!r}")
        self.require_range("alpha", 0.0, 1.0, low_open=True, high_open=True)
        radii = list(self.radii)
        if not radii:
            self.fail("radii", "must list at least one radius")
        if any(not math.isfinite(r) or r < 0 for r in radii):
            self.fail("radii", f"must be non-negative finite numbers; got {radii}")
        if any(b <= a for a, b in zip(radii, radii[1:])):
            self.fail("radii", f"must be strictly increasing; got {radii}")
        for key in ("poison_eta", "poison_eps"):
            if getattr(self, key) is not None:
                self.require_range(key, 0.0, None)
