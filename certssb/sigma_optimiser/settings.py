"""The ``sigma_optimiser`` options' settings: RAB's fixed sigma, Cert-SSB's SGA, the released rule.

The rules of each value (ranges, sigma_min <= sigma_0 <= sigma_max, ...) are written once, in
:func:`certssb.sigma_optimiser.config.parse_sigma_config`; :meth:`check` applies them at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, List, Optional

from omegaconf import MISSING

from certssb.config import Option


@dataclass
class SigmaOptimiserSettings(Option):
    """Base of the ``sigma_optimiser`` options; ``sigma_0`` is the starting (or fixed) noise level."""

    config_group: ClassVar[str] = "sigma_optimiser"
    sigma_0: float = MISSING

    def check(self, run) -> None:
        from .config import parse_sigma_config

        parse_sigma_config(self)


@dataclass
class SGASettings(SigmaOptimiserSettings):
    """Cert-SSB: per-sample sigma by stochastic gradient ascent on the proxy radius."""

    n_draws: int = MISSING
    lr: float = MISSING
    iterations: int = MISSING
    clip_low: float = MISSING
    clip_high: float = MISSING
    sigma_min: float = MISSING
    sigma_max: float = MISSING
    batch_size: int = MISSING
    surrogate_epochs: Optional[int] = MISSING
    device: str = MISSING
    objective: str = MISSING                    # paper | joint (ascend the sound radius)
    sigma_train_floor: Optional[float] = MISSING  # training sigmas >= floor; the certificate uses it


@dataclass
class FixedSigmaSettings(SGASettings):
    """RAB: one noise level ``sigma_0`` for every sample.

    It reads SGA's knobs from ``sga.yaml`` (its defaults) without using them, so that an
    experiment can tune SGA and a sweep can still compare ``fixed`` with ``sga`` on the same
    bundle; they are left out of its records and fingerprints (:meth:`plain`).
    """

    def plain(self) -> dict:
        return {"name": self.name, "sigma_0": self.sigma_0}

    def check(self, run) -> None:
        from .config import parse_sigma_config

        parse_sigma_config(self)  # fixed reads sigma_0 only


@dataclass
class ReleasedSettings(SGASettings):
    """COMPATIBILITY ONLY: the released code's model-ignoring update (sigma only grows)."""


@dataclass
class GridSettings(SigmaOptimiserSettings):
    """Sound design 1 (METHOD.md section 7): members trained once at ``sigma_train``; each test
    input certified with the grid sigma that maximises its sound radius, the choice paid for."""

    sigma_train: float = MISSING
    test_sigmas: List[float] = MISSING
    selection: str = MISSING          # union | separate
    selection_members: int = MISSING
    device: str = MISSING

    def check(self, run) -> None:
        super().check(run)
        n = run.ensemble.n_members if run is not None else None
        if self.selection == "separate" and n is not None and self.selection_members >= n:
            self.fail("selection_members", f"must be < ensemble.n_members ({n}); got {self.selection_members}")


@dataclass
class GridEnsemblesSettings(SigmaOptimiserSettings):
    """Sound design 1 over several training sigmas: one ensemble (``ensemble.n_members`` members)
    per data-independent sigma in ``sigma_trains``; each test input certified by the (ensemble,
    test sigma) pair with the largest sound radius, the choice paid for by a union bound over
    all pairs."""

    sigma_trains: List[float] = MISSING
    test_sigmas: Optional[List[float]] = MISSING  # null: each ensemble at its own training sigma
    selection: str = MISSING                      # union (the only choice: every ensemble estimates)
    device: str = MISSING
