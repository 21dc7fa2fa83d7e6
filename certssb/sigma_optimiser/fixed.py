"""``sigma_optimiser=fixed``: RAB's one noise level for every sample (docs/METHOD.md section 2)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from .base import SigmaOptimiserSettings, Sigmas, constant


@dataclass
class FixedSigmaSettings(SigmaOptimiserSettings):
    """RAB: every training and test sample smoothed with ``sigma_0`` (data-independent)."""

    sigma_0: float = MISSING

    def check(self, run) -> None:
        self.require_range("sigma_0", 0.0, None, low_open=True)

    def method_name(self) -> str:
        return "rab"

    def recorded_sigma_0(self) -> float:
        return float(self.sigma_0)

    def sigmas(self, run, factory, poisoned, x_test, device, cache_dir, data_fp, progress) -> Sigmas:
        n_train, n_test = len(poisoned.x_train), len(x_test)
        return Sigmas(constant(n_train, self.sigma_0), constant(n_test, self.sigma_0), constant(n_test, self.sigma_0),
                      constant(n_train, self.sigma_0))
