"""``ensemble=partition``: Deep Partition Aggregation (Levine & Feizi, ICLR 2021; docs/METHOD.md
section 8.2). The training set is split into ``n_parts`` disjoint parts; model ``j`` is trained on
part ``j`` alone, without noise, with its own fixed seed. A changed training sample changes one
part (``key: index``) or up to two (``key: hash``), hence at most that many models' votes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from omegaconf import MISSING

from .count import KEYS, CountEnsembleSettings, assign_buckets, subsets_of


@dataclass
class PartitionSettings(CountEnsembleSettings):
    """``n_parts`` models, one per disjoint part of the training set."""

    n_parts: int = MISSING
    key: str = MISSING  # index | hash

    @property
    def n_members(self) -> int:
        return int(self.n_parts)

    def check(self, run) -> None:
        self.require_range("n_parts", 1, None)
        self.require_choice("key", KEYS)
        super().check(run)

    def parts_per_modification(self) -> int:
        return 1 if self.key == "index" else 2

    def models_fingerprint(self) -> dict:
        return {"partition": {"n_parts": int(self.n_parts), "key": self.key}}

    def training_subsets(self, x_train, y_train, seed: int):
        part = assign_buckets(self.key, int(self.n_parts), x_train, y_train, seed)
        return subsets_of([np.flatnonzero(part == j) for j in range(int(self.n_parts))])
