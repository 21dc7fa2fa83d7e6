"""``ensemble=bagging``: bagging (Jia, Cao & Gong, AAAI 2021; docs/METHOD.md section 8.2). Model ``j``
trains without noise on a bag of ``bag_size`` samples drawn uniformly with replacement from the
training set, regenerable from the run seed and ``j`` alone (like the members' noise)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from omegaconf import MISSING

from .count import CountEnsembleSettings, subsets_of


@dataclass
class BaggingSettings(CountEnsembleSettings):
    """``n_members`` models, each on its own bag (duplicates kept: a sample drawn twice counts twice)."""

    structure: ClassVar[str] = "bags"

    n_members: int = MISSING  # type: ignore[assignment]
    bag_size: int = MISSING

    def check(self, run) -> None:
        self.require_range("n_members", 1, None)
        self.require_range("bag_size", 1, None)
        super().check(run)

    def models_fingerprint(self) -> dict:
        return {"bagging": {"bag_size": int(self.bag_size)}}

    def training_subsets(self, x_train, y_train, seed: int):
        from certssb.certifier.bagging import bag_indices

        n = len(x_train)
        return [subsets_of([bag_indices(seed, j, n, int(self.bag_size))])[0] for j in range(int(self.n_members))]
