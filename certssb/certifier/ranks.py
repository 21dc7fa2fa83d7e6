"""Base-model outputs for the count-certified defences (METHOD.md 8.2): ranks, votes, checks.

A base model's output on an input is its ordering of the C classes, held as RANKS:
``ranks[i, j, c]`` is the position of class c in model j's ordering on input i (0 = its top
class), ties broken to the smaller class index, so every ``ranks[i, j]`` is a permutation of
``0..C-1``. Model j votes for the class of rank 0 and prefers class a to class b iff
``ranks[i, j, a] < ranks[i, j, b]``.

Votes ``n_c`` and the top class ``y = argmax_c n_c`` (ties to the smaller index) follow; the
MARGIN of a class a over a class c (a != c) is ``n_a - n_c + [c > a]``: a is ahead of c (more
votes, or as many and a smaller index) iff the margin is >= 1, and an attack must lower it to
<= 0 to put c ahead of a. (METHOD's ``gap_c = n_y - n_c - [c < y]`` is the margin of y minus 1.)
"""

from __future__ import annotations

import numpy as np

from certssb.errors import ScoreInputError

__all__ = [
    "check_predictions",
    "check_ranks",
    "check_votes",
    "margin",
    "predictions_from_ranks",
    "ranks_from_logits",
    "top_two",
    "votes_from_predictions",
    "votes_from_ranks",
]


def _integer_array(values, name: str, ndim: int, shape_text: str) -> np.ndarray:
    if values is None:
        raise ScoreInputError(f"{name} is missing (got None)")
    arr = np.asarray(values)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ScoreInputError(f"{name} must be an integer array {shape_text}, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ScoreInputError(f"{name} must have shape {shape_text}, got {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.floor(arr)):
            raise ScoreInputError(f"{name} must hold integers, got non-integer values")
    return arr.astype(np.int64)


def check_ranks(ranks) -> np.ndarray:
    """``ranks`` as int64 [m, M, C] (m >= 0, M >= 1, C >= 2), every ``ranks[i, j]`` a permutation
    of 0..C-1; otherwise :class:`ScoreInputError` (one line)."""
    r = _integer_array(ranks, "ranks", 3, "[m, M, C]")
    m, n_models, n_classes = r.shape
    if n_models < 1 or n_classes < 2:
        raise ScoreInputError(f"ranks must have shape [m, M, C] with M >= 1 and C >= 2, got {r.shape}")
    if m and not np.array_equal(np.sort(r, axis=2), np.broadcast_to(np.arange(n_classes), r.shape)):
        bad = ~(np.sort(r, axis=2) == np.arange(n_classes)).all(axis=2)
        i, j = (int(v[0]) for v in np.nonzero(bad))
        raise ScoreInputError(f"ranks[{i}, {j}] is not a permutation of 0..{n_classes - 1}: {r[i, j].tolist()}")
    return r


def check_votes(votes, n_models=None) -> np.ndarray:
    """``votes`` as int64 [m, C] (C >= 2), entries >= 0, every row summing to the same M >= 1
    (each base model votes once per input), equal to ``n_models`` when given."""
    v = _integer_array(votes, "votes", 2, "[m, C]")
    if v.shape[1] < 2:
        raise ScoreInputError(f"votes must have shape [m, C] with C >= 2, got {v.shape}")
    if np.any(v < 0):
        raise ScoreInputError(f"votes must be >= 0; row {int(np.nonzero((v < 0).any(1))[0][0])} has {int(v.min())}")
    sums = v.sum(axis=1)
    if n_models is not None:
        n = np.asarray(n_models)
        if n.ndim != 0 or n.dtype == bool or not np.issubdtype(n.dtype, np.integer) or int(n) < 1:
            raise ScoreInputError(f"n_models must be an integer >= 1, got {n_models!r}")
        expected = int(n)
    elif v.shape[0]:
        expected = int(sums[0])
    else:
        return v
    bad = sums != expected
    if np.any(bad) or expected < 1:
        row = int(np.nonzero(bad)[0][0]) if np.any(bad) else 0
        raise ScoreInputError(f"votes of every row must sum to the number of models M={expected} (each model "
                              f"votes once); row {row} sums to {int(sums[row])}")
    return v


def check_predictions(predictions, num_classes) -> np.ndarray:
    """Per-model predicted classes as int64 [m, M] (M >= 1), each in 0..num_classes-1."""
    c = np.asarray(num_classes)
    if c.ndim != 0 or c.dtype == bool or not np.issubdtype(c.dtype, np.integer) or int(c) < 2:
        raise ScoreInputError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    p = _integer_array(predictions, "predictions", 2, "[m, M]")
    if p.shape[1] < 1:
        raise ScoreInputError(f"predictions must have shape [m, M] with M >= 1, got {p.shape}")
    if np.any(p < 0) or np.any(p >= int(c)):
        raise ScoreInputError(f"predictions must be class indices in 0..{int(c) - 1}, got values in "
                              f"[{int(p.min())}, {int(p.max())}]")
    return p


def ranks_from_logits(logits) -> np.ndarray:
    """Ranks [m, M, C] from per-model class scores [m, M, C] (larger = preferred); equal scores
    are ranked by class index (smaller first). int8 when C <= 127, else int16 (C <= 32767)."""
    x = np.asarray(logits)
    if x.ndim != 3 or x.shape[1] < 1 or x.shape[2] < 2:
        raise ScoreInputError(f"logits must have shape [m, M, C] with M >= 1 and C >= 2, got {x.shape}")
    if x.dtype == bool or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ScoreInputError(f"logits must be a real array, got dtype {x.dtype}")
    if x.shape[2] > 32767:
        raise ScoreInputError(f"at most 32767 classes are supported, got {x.shape[2]}")
    x = x.astype(np.float64)  # exact for float16/32/64 and for integers below 2**53
    if np.any(np.isnan(x)):
        raise ScoreInputError("logits contain NaN")
    order = np.argsort(-x, axis=2, kind="stable")  # order[..., p] = class at position p
    dtype = np.int8 if x.shape[2] <= 127 else np.int16
    ranks = np.empty(x.shape, dtype=dtype)
    np.put_along_axis(ranks, order, np.arange(x.shape[2], dtype=dtype)[None, None, :], axis=2)
    return ranks


def predictions_from_ranks(ranks) -> np.ndarray:
    """Each model's vote (its class of rank 0) as int64 [m, M]."""
    return np.argmin(check_ranks(ranks), axis=2).astype(np.int64)


def votes_from_predictions(predictions, num_classes: int) -> np.ndarray:
    """Votes int64 [m, C]: ``votes[i, c]`` = number of models predicting c on input i."""
    p = check_predictions(predictions, num_classes)
    votes = np.zeros((p.shape[0], int(num_classes)), dtype=np.int64)
    np.add.at(votes, (np.repeat(np.arange(p.shape[0]), p.shape[1]), p.ravel()), 1)
    return votes


def votes_from_ranks(ranks) -> np.ndarray:
    """Votes int64 [m, C]: ``votes[i, c]`` = number of models whose rank-0 class is c."""
    return (check_ranks(ranks) == 0).sum(axis=1).astype(np.int64)


def top_two(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two classes with the most votes, in order (ties to the smaller index), int64 [m] each."""
    order = np.argsort(-votes, axis=1, kind="stable")
    return order[:, 0].astype(np.int64), order[:, 1].astype(np.int64)


def margin(counts: np.ndarray, a, c) -> np.ndarray:
    """``counts[a] - counts[c] + [c > a]`` row by row (a, c: int arrays [m] or ints)."""
    rows = np.arange(counts.shape[0])
    a = np.broadcast_to(np.asarray(a, dtype=np.int64), (counts.shape[0],))
    c = np.broadcast_to(np.asarray(c, dtype=np.int64), (counts.shape[0],))
    return counts[rows, a] - counts[rows, c] + (c > a).astype(np.int64)
