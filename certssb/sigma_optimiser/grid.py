"""``sigma_optimiser=grid``: sound design 1 of docs/METHOD.md section 7. Members are trained once
at the data-independent ``sigma_train``; each test input is evaluated at every sigma of
``test_sigmas`` and certified with the one that maximises its sound radius
``min(s, sigma_train) * G_s / 2``, the choice paid for in the bounds (:mod:`certssb.certifier.grid`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, List

import torch
from omegaconf import MISSING

from .base import SigmaOptimiserSettings, Sigmas, constant

SELECTIONS = ("union", "separate")


class GridDesign:
    """What the grid designs share: data-independent training sigmas (one ensemble per value of
    :meth:`train_sigmas`), votes at every (training, test) sigma pair of :meth:`candidates`, and the
    pair chosen per input when certifying. Subclasses define the three methods used here."""

    chooses_test_sigma: ClassVar[bool] = True
    #: each grid position certified with its own ensemble's training sigma (grid_ensembles)
    per_ensemble: ClassVar[bool] = False
    selection: str

    def train_sigmas(self) -> tuple[float, ...]:
        raise NotImplementedError

    def candidates(self) -> tuple[tuple[float, float], ...]:
        raise NotImplementedError

    def n_selection_members(self) -> int:
        return 0

    def sigmas(self, run, factory, poisoned, x_test, device, cache_dir, data_fp, progress) -> Sigmas:
        n_train, n_test = len(poisoned.x_train), len(x_test)
        largest = max(s for _, s in self.candidates())  # replaced by the chosen sigmas after certifying
        low = min(self.train_sigmas())
        return Sigmas(constant(n_train, low), constant(n_test, largest), constant(n_test, largest),
                      constant(n_train, low))

    def ensembles(self, train: torch.Tensor) -> list[torch.Tensor]:
        return [constant(train.shape[0], t) for t in self.train_sigmas()]

    def predict(self, factory, stores, testset, ensemble, seed, device, progress):
        """Votes at every candidate (:func:`certssb.ensemble.predict_grid`); chosen when certifying."""
        from certssb.ensemble import GridSpec, EvalInputs, predict_grid

        spec = GridSpec(self.candidates(), self.train_sigmas(), self.selection, self.n_selection_members(),
                        self.per_ensemble)
        inputs = EvalInputs(testset.x, None, torch.from_numpy(testset.indices), seed)
        return predict_grid(factory, stores, inputs, spec, ensemble, int(ensemble.n_members), device=device,
                            progress=progress)

        return predict_grid(factory, stores, testset.x, torch.from_numpy(testset.indices), self.candidates(),
                            self.train_sigmas(), ensemble, seed, int(ensemble.n_members), selection=self.selection,
                            n_select=self.n_selection_members(), per_ensemble=self.per_ensemble, device=device,
                            progress=progress)


@dataclass
class GridSettings(GridDesign, SigmaOptimiserSettings):
    """One ensemble at ``sigma_train``; the test sigma of each input chosen from ``test_sigmas``."""

    sigma_train: float = MISSING
    test_sigmas: List[float] = MISSING
    selection: str = MISSING          # union | separate
    selection_members: int = MISSING

    def check(self, run) -> None:
        self.require_range("sigma_train", 0.0, None, low_open=True)
        check_sigma_list(self, "test_sigmas")
        above = [s for s in self.test_sigmas if s > self.sigma_train]
        if above:
            self.fail("test_sigmas", f"must all be <= sigma_train ({self.sigma_train:g}); got {above[0]:g}")
        self.require_choice("selection", SELECTIONS)
        self.require_range("selection_members", 0, None)
        if self.selection == "separate":
            n = run.ensemble.n_members if run is not None else None
            if self.selection_members < 1 or (n is not None and self.selection_members >= n):
                self.fail("selection_members", f"must be >= 1 and < ensemble.n_members ({n}) with selection=separate; "
                                               f"got {self.selection_members}")

    def method_name(self) -> str:
        return "cert-ssb-grid"

    def recorded_sigma_0(self) -> float:
        return float(self.sigma_train)

    def train_sigmas(self) -> tuple[float, ...]:
        return (float(self.sigma_train),)

    def candidates(self) -> tuple[tuple[float, float], ...]:
        return tuple((float(self.sigma_train), float(s)) for s in self.test_sigmas)

    def n_selection_members(self) -> int:
        return int(self.selection_members) if self.selection == "separate" else 0

    def summary_fields(self, alpha_per_bound) -> dict:
        return {"grid": {"sigma_train": self.sigma_train, "test_sigmas": list(self.test_sigmas),
                         "selection": self.selection, "selection_members": self.n_selection_members(),
                         "alpha_per_bound": alpha_per_bound}}


def check_sigma_list(option: SigmaOptimiserSettings, key: str) -> list[float]:
    """``option.key`` must be a non-empty list of distinct finite numbers > 0."""
    values = list(getattr(option, key))
    if not values:
        option.fail(key, "must list at least one sigma")
    if any(not math.isfinite(v) or v <= 0 for v in values):
        option.fail(key, f"must hold finite numbers > 0; got {values}")
    if len(set(values)) != len(values):
        option.fail(key, f"must not repeat a value; got {values}")
    return values
