"""``ensemble=finite_aggregation``: Finite Aggregation (Wang, Levine & Feizi, ICML 2022; docs/METHOD.md
section 8.2). The training set is split into ``n_parts * spread`` buckets; there are as many models,
and model ``j`` trains on the ``spread`` buckets that feed it (bucket ``h`` feeds models
``h, h+1, ..., h+spread-1`` mod the number of models), so each bucket feeds ``spread`` models. With
``spread: 1`` it is DPA."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from omegaconf import MISSING

from .count import KEYS, CountEnsembleSettings, assign_buckets, subsets_of


@dataclass
class FiniteAggregationSettings(CountEnsembleSettings):
    """``n_parts * spread`` models, each on ``spread`` of as many buckets."""

    structure: ClassVar[str] = "buckets"

    n_parts: int = MISSING
    spread: int = MISSING
    key: str = MISSING  # index | hash

    @property
    def n_members(self) -> int:
        return int(self.n_parts) * int(self.spread)

    def check(self, run) -> None:
        self.require_range("n_parts", 1, None)
        self.require_range("spread", 1, None)
        self.require_choice("key", KEYS)
        super().check(run)

    def parts_per_modification(self) -> int:
        return 1 if self.key == "index" else 2

    def bucket_models(self) -> np.ndarray:
        from certssb.certifier.finite_aggregation import fa_bucket_models

        return fa_bucket_models(int(self.n_parts), int(self.spread))

    def models_fingerprint(self) -> dict:
        return {"finite_aggregation": {"n_parts": int(self.n_parts), "spread": int(self.spread), "key": self.key}}

    def training_subsets(self, x_train, y_train, seed: int):
        from certssb.certifier.finite_aggregation import fa_model_buckets

        bucket = assign_buckets(self.key, self.n_members, x_train, y_train, seed)
        members = fa_model_buckets(int(self.n_parts), int(self.spread))
        return subsets_of([np.flatnonzero(np.isin(bucket, members[j])) for j in range(self.n_members)])
