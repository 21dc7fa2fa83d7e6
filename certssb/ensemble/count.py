"""What the count-certified ensemble options share (docs/METHOD.md section 8.2): models trained
without noise, each on its own subset of the training set, whose certificate counts training
samples. The options: :mod:`.partition` (DPA), :mod:`.finite_aggregation` (FA), :mod:`.bagging`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from .settings import EnsembleSettings

KEYS = ("index", "hash")


@dataclass
class CountEnsembleSettings(EnsembleSettings):
    """Base of the count-certified ensembles: no noise; model ``k`` trains on its own subset."""

    family: ClassVar[str] = "count"
    #: what the models train on: ``parts`` (DPA), ``buckets`` (Finite Aggregation) or ``bags``
    structure: ClassVar[str] = "parts"

    def parts_per_modification(self) -> int:
        """How many of the certificate's units (parts, buckets) one modified training sample can
        touch: 1 when a sample's part is fixed by its position (``key: index``), 2 when it follows
        the sample's bytes (``key: hash``: a modification is a deletion plus an insertion)."""
        return 1

    def bucket_models(self) -> np.ndarray | None:
        """Finite Aggregation's bucket -> models map (int64 [buckets, spread]); None: each model is
        its own part (DPA) or bag."""
        return None

    def training_subsets(self, x_train, y_train, seed: int) -> list[torch.Tensor]:
        raise NotImplementedError


def assign_buckets(key: str, n_buckets: int, x_train, y_train, seed: int) -> np.ndarray:
    """int64 [n]: each training sample's bucket (part) in ``0..n_buckets-1``: by a seeded permutation
    of the positions (``index``) or by a hash of the sample's float32 bytes and label (``hash``,
    DPA's choice: a function of the sample alone, so an inserted or deleted sample moves no other)."""
    from certssb.certifier.partition import partition_hash, partition_index

    n = len(x_train)
    if key == "index":
        return partition_index(n, n_buckets, seed)
    rows = np.concatenate([b.reshape(len(b), -1).numpy() for b in x_train.batches(4096)]) if n else np.zeros((0, 1))
    return partition_hash(np.ascontiguousarray(rows, dtype=np.float32).view(np.uint8), y_train.numpy(), n_buckets)


def subsets_of(groups: list[np.ndarray]) -> list[torch.Tensor]:
    """Sorted int64 index tensors, one per model."""
    return [torch.from_numpy(np.sort(np.asarray(g, dtype=np.int64))) for g in groups]
