"""The count family's attack: ``k`` training samples changed arbitrarily, features AND labels.

Each chosen sample becomes the attacked test input itself, labelled with the runner-up class (the
class whose vote gap to the prediction is smallest), so a model that trains on it learns to
predict the runner-up there. Which samples:

- ``partition`` (DPA, ``key: index``: a sample keeps its part): one sample in each of the parts
  whose model voted for the predicted class, those that rank the runner-up highest first, then a
  second sample in each, and so on (each corrupted part can move one vote, so spreading the
  samples over parts is the strongest use of k). Within a part, the samples of the predicted class
  nearest to the input first (removing support for it), then the others. DPA's certificate is
  deterministic, so this attacker may look at everything, the models' votes included.
- ``bagging``: the ``k`` training samples of the predicted class nearest to the input, chosen
  WITHOUT looking at the bags (bagging's certificate is over the draw of the bags: an attacker
  who picks the samples that the realised bags use is outside it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["CountAttack", "affected_models", "bagging_samples", "partition_samples", "poisoned_copy", "runner_up"]


@dataclass
class CountAttack:
    """One attacked input at one count: the changed training samples and the models they reach."""

    test_index: int
    k: int
    target: int  # the runner-up: every changed sample's new label
    samples: np.ndarray  # int64: the changed training samples (distinct)
    models: np.ndarray  # int64: the models whose training subsets hold a changed sample


def runner_up(votes_row: np.ndarray, y: int) -> int:
    """The class ``c != y`` with the smallest gap ``n_y - n_c - [c < y]`` (ties: smaller index)."""
    v = np.asarray(votes_row, dtype=np.int64)
    gap = v[y] - v - (np.arange(len(v)) < y).astype(np.int64)
    gap[y] = np.iinfo(np.int64).max
    return int(np.argmin(gap))


def _nearest_first(x_train: torch.Tensor, candidates: np.ndarray, x: torch.Tensor) -> np.ndarray:
    """``candidates`` ordered by L2 distance to ``x`` (stable)."""
    if not len(candidates):
        return candidates
    d = (x_train[torch.from_numpy(candidates)].reshape(len(candidates), -1).double()
         - x.reshape(1, -1).double()).norm(dim=1).numpy()
    return candidates[np.argsort(d, kind="stable")]


def partition_samples(k: int, parts: list[np.ndarray], order: np.ndarray, y_train: torch.Tensor,
                      x_train: torch.Tensor, x: torch.Tensor, y: int) -> np.ndarray:
    """``k`` samples spread round robin over the parts ``order`` (indices into ``parts``, the
    training samples of each model): per part, class-``y`` samples nearest to ``x`` first."""
    labels = y_train.numpy()
    queues = []
    for j in order:
        idx = np.asarray(parts[int(j)], dtype=np.int64)
        own = _nearest_first(x_train, idx[labels[idx] == y], x)
        rest = _nearest_first(x_train, idx[labels[idx] != y], x)
        queues.append(list(np.concatenate([own, rest])))
    chosen: list[int] = []
    while len(chosen) < k and any(queues):
        for q in queues:
            if q and len(chosen) < k:
                chosen.append(int(q.pop(0)))
    return np.asarray(chosen, dtype=np.int64)


def bagging_samples(k: int, y_train: torch.Tensor, x_train: torch.Tensor, x: torch.Tensor, y: int) -> np.ndarray:
    """The ``k`` training samples nearest to ``x``, those of class ``y`` first (the bags unseen)."""
    labels = y_train.numpy()
    every = np.arange(len(labels), dtype=np.int64)
    ranked = np.concatenate([_nearest_first(x_train, every[labels == y], x),
                             _nearest_first(x_train, every[labels != y], x)])
    return ranked[:k]


def affected_models(subsets: list[torch.Tensor], samples: np.ndarray) -> np.ndarray:
    """The models whose training subset holds any of ``samples`` (int64, ascending)."""
    return np.asarray([j for j, s in enumerate(subsets) if np.isin(s.numpy(), samples).any()], dtype=np.int64)


def poisoned_copy(x_train: torch.Tensor, y_train: torch.Tensor, samples: np.ndarray, x: torch.Tensor,
                  target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training set with every sample in ``samples`` replaced by ``(x, target)``."""
    xp, yp = x_train.clone(), y_train.clone()
    rows = torch.from_numpy(np.asarray(samples, dtype=np.int64))
    xp[rows] = x.to(xp.dtype)
    yp[rows] = int(target)
    return xp, yp
