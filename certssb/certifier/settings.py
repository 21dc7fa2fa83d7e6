"""The ``certifier`` group's settings: what every certifier option declares, and the Gaussian
family's options (``cohen``, ``rab``, ``storage_update``: bounds, alpha, radius grid, memory).

Every certifier belongs to a ``family`` that must match the ensemble's (docs/METHOD.md section 8):
``gaussian`` certifies an L2 radius of feature changes (labels held as they are) from members with
noise; ``count`` certifies a number of training samples changed arbitrarily (labels included) from
models trained on parts or bags (:mod:`.count`). A mismatch ends the run before any work.
"""

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
class CertifierSettings(Option):
    """Base of the ``certifier`` options."""

    config_group: ClassVar[str] = "certifier"
    #: ``gaussian`` (L2 radius, labels held) or ``count`` (any k changed training samples)
    family: ClassVar[str] = "gaussian"

    def method_name(self, run) -> str:
        """The method's name in summary.json and W&B."""
        raise NotImplementedError

    def alpha_or_none(self) -> float | None:
        """The failure probability of the certificates (None: a deterministic certificate)."""
        return None

    def check(self, run) -> None:
        ensemble = getattr(run, "ensemble", None)
        if ensemble is not None and ensemble.family != self.family:
            what = {"gaussian": "an L2 radius from members trained with Gaussian noise",
                    "count": "a number of changed training samples from models on parts or bags"}[self.family]
            self.fail_option(f"certifies {what}, but ensemble={ensemble.name} is of the {ensemble.family} family: "
                             f"choose a {ensemble.family} certifier ({_family_hint(ensemble.family)})")


def _family_hint(family: str) -> str:
    return "cohen, rab or storage_update" if family == "gaussian" else "dpa, fa, roe or bagging, to match the ensemble"


@dataclass
class MemorySettings:
    """Storage-update certification (METHOD.md section 3, step 4)."""

    enabled: bool = MISSING
    order: str = MISSING        # index | shuffle (seeded by order_seed)
    order_seed: int = MISSING
    shared: bool = MISSING      # one memory for clean and triggered inputs


@dataclass
class GaussianCertifierSettings(CertifierSettings):
    """Bounds on the smoothed class probabilities (soft: Hoeffding; hard: Clopper-Pearson), the
    certified L2 radii, the poisoned-sample count and the optional storage-update memory."""

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
        super().check(run)
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

    def method_name(self, run) -> str:
        return run.sigma_optimiser.method_name()

    def alpha_or_none(self) -> float:
        return float(self.alpha)

    def bound_options(self):
        """The options of every bound (:class:`certssb.certifier.scores.BoundOptions`)."""
        from .scores import BoundOptions

        return BoundOptions(float(self.alpha), self.mode, self.pb_mode, bool(self.selection_correction))

    def bounds(self, prob_sum, votes, n):
        """:func:`certssb.certifier.certify_scores` with these settings."""
        from .scores import certify_scores

        o = self.bound_options()
        return certify_scores(prob_sum, votes, n, alpha=o.alpha, mode=o.mode, pb_mode=o.pb_mode,
                              selection_correction=o.selection_correction)

    def grid_bounds(self, grid, poison=None):
        """:func:`certssb.certifier.certify_grid` of grid votes with these settings; ``poison``:
        ``(eps, eta, n_train)`` of the poisoned-sample count (used by ``grid_select=poison_count``)."""
        from .grid import certify_grid

        return certify_grid(grid, self.bound_options(), self.grid_select, poison)
