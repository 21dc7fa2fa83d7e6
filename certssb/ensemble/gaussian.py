"""``ensemble=gaussian``: N smoothed members (RAB, Cert-SSB), each trained on the whole training set
with its own fixed Gaussian noise (``x_i + sigma_i * member_noise(seed, k, i, "train")``, the
sigmas from the ``sigma_optimiser`` option)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from .settings import EnsembleSettings


@dataclass
class GaussianEnsembleSettings(EnsembleSettings):
    """N members on the whole set, each with its own fixed training noise."""

    n_members: int = MISSING  # type: ignore[assignment]

    def check(self, run) -> None:
        self.require_range("n_members", 1, None)
        super().check(run)
