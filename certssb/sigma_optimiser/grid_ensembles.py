"""``sigma_optimiser=grid_ensembles``: sound design 1 over several training sigmas (docs/METHOD.md
section 7). One ensemble of ``ensemble.n_members`` members per data-independent sigma in
``sigma_trains``; each test input is certified by the (training sigma, test sigma) pair with the
largest sound radius ``min(s, sigma_T) * G / 2``, the choice paid for by a union bound over every
pair. The certificate of an input uses the training sigma of the ensemble that certified it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, List, Optional

from omegaconf import MISSING

from .base import SigmaOptimiserSettings
from .grid import GridDesign, check_sigma_list


@dataclass
class GridEnsemblesSettings(GridDesign, SigmaOptimiserSettings):
    """One ensemble per ``sigma_trains`` value, each tested at its own sigma (``test_sigmas``
    null) or at every listed sigma <= its training sigma."""

    per_ensemble: ClassVar[bool] = True

    sigma_trains: List[float] = MISSING
    test_sigmas: Optional[List[float]] = MISSING
    selection: str = MISSING  # union (the only choice: every ensemble estimates)

    def check(self, run) -> None:
        trains = check_sigma_list(self, "sigma_trains")
        if self.test_sigmas is not None:
            tests = check_sigma_list(self, "test_sigmas")
            for t in trains:
                if not any(s <= t for s in tests):
                    self.fail("test_sigmas", f"has no value <= the training sigma {t:g} of sigma_trains")
        if self.selection != "union":
            self.fail("selection", f"must be union for grid_ensembles (every ensemble estimates); got {self.selection!r}")

    def method_name(self) -> str:
        return "cert-ssb-grid-ensembles"

    def recorded_sigma_0(self) -> float:
        return float(self.sigma_trains[0])

    def train_sigmas(self) -> tuple[float, ...]:
        return tuple(float(t) for t in self.sigma_trains)

    def candidates(self) -> tuple[tuple[float, float], ...]:
        return tuple((t, float(s)) for t in self.train_sigmas() for s in (self.test_sigmas or (t,)) if s <= t)

    def summary_fields(self, alpha_per_bound) -> dict:
        return {"grid": {"sigma_trains": list(self.sigma_trains), "test_sigmas": self.test_sigmas or None,
                         "candidates": [list(c) for c in self.candidates()], "selection": self.selection,
                         "selection_members": 0, "alpha_per_bound": alpha_per_bound}}
