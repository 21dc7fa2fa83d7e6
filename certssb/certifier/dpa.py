"""Deep Partition Aggregation (Levine & Feizi, ICLR 2021), METHOD.md 8.2 item 1.

Base model j is trained on part j of a partition of the training set; the prediction is the
class with the most votes (ties to the smaller index). Changing the training set of one base
model changes at most its own vote, which lowers ``gap_c = n_y - n_c - [c < y]`` by at most 2
(a vote moved from y to c). So the prediction survives any t corrupted parts iff
``gap_c - 2 t >= 0`` for every c: ``parts = min_{c != y} floor(gap_c / 2)``, and t = parts + 1
corrupted parts (votes moved from y to the best c) do change it, so the certificate is exact.
"""

from __future__ import annotations

import numpy as np

from .ranks import check_votes

__all__ = ["dpa_certificate"]


def dpa_certificate(votes, n_models=None) -> tuple[np.ndarray, np.ndarray]:
    """DPA prediction and certificate from votes int [m, C] (rows sum to M; ``n_models`` checks M).

    Returns ``(prediction, parts)``, int64 [m] each: ``prediction`` = argmax of the votes (ties to
    the smaller class index); ``parts`` = the largest number of base models (parts) whose training
    sets may change arbitrarily without changing the prediction, ``min_{c != y} floor(gap_c / 2)``
    (always >= 0: -1 never occurs here).
    """
    v = check_votes(votes, n_models)
    m, n_classes = v.shape
    rows = np.arange(m)
    y = np.argmax(v, axis=1).astype(np.int64)  # first maximum = smallest index
    classes = np.arange(n_classes)[None, :]
    gap = v[rows, y][:, None] - v - (classes < y[:, None]).astype(np.int64)
    gap[rows, y] = np.iinfo(np.int64).max  # c = y is not a competitor
    parts = np.floor_divide(gap.min(axis=1), 2) if m else np.zeros(0, dtype=np.int64)
    return y, parts.astype(np.int64)


# ------------------------------------------------------------------------------------------------
# the option: certifier=dpa

from dataclasses import dataclass  # noqa: E402
from typing import ClassVar  # noqa: E402

from .count import CountCertificate, CountCertifierSettings, to_modifications  # noqa: E402


@dataclass
class DPASettings(CountCertifierSettings):
    """DPA's certificate from the vote counts of a partition ensemble (``ensemble=partition``)."""

    structures: ClassVar[tuple[str, ...]] = ("parts",)

    def certify(self, votes, ensemble, n_train: int) -> CountCertificate:
        prediction, parts = dpa_certificate(votes.votes, votes.n_members)
        return CountCertificate(prediction, to_modifications(parts, ensemble), parts)
