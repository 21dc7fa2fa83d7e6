"""Independent references for the count-certified defences' tests: predictions written from the
definitions (METHOD.md 8.2) without the certifier's helpers, and brute-force searches for the
smallest corruption that changes a prediction (every corrupted base model outputs ANY class or
ANY ranking: all of them are enumerated)."""

from __future__ import annotations

import itertools

import numpy as np


def plurality_ref(tops: np.ndarray, num_classes: int) -> np.ndarray:
    """Most-voted class per row of tops [N, M] (ties to the smaller class index)."""
    counts = np.stack([(tops == c).sum(axis=1) for c in range(num_classes)], axis=1)
    # the key orders by votes, then by smaller index; distinct per class
    key = counts * num_classes + (num_classes - 1 - np.arange(num_classes))[None, :]
    return key.argmax(axis=1)


def runoff_ref(ranks: np.ndarray) -> np.ndarray:
    """Run-off election per row of ranks [N, M, C] (rank 0 = top; smaller rank = preferred)."""
    n, _, num_classes = ranks.shape
    tops = ranks.argmin(axis=2)
    counts = np.stack([(tops == c).sum(axis=1) for c in range(num_classes)], axis=1)
    key = counts * num_classes + (num_classes - 1 - np.arange(num_classes))[None, :]
    first = key.argmax(axis=1)
    key[np.arange(n), first] = -1
    second = key.argmax(axis=1)
    rows = np.arange(n)
    for_first = (ranks[rows, :, first] < ranks[rows, :, second]).sum(axis=1)
    for_second = (ranks[rows, :, second] < ranks[rows, :, first]).sum(axis=1)
    tie_winner = np.minimum(first, second)
    return np.where(for_first > for_second, first, np.where(for_second > for_first, second, tie_winner))


def all_rankings(num_classes: int) -> np.ndarray:
    """Every ranking of the classes as ranks [C!, C] (row = ranks of classes 0..C-1)."""
    out = []
    for order in itertools.permutations(range(num_classes)):  # order[p] = class at position p
        r = np.empty(num_classes, dtype=np.int64)
        r[list(order)] = np.arange(num_classes)
        out.append(r)
    return np.array(out)


def order_to_ranks(order) -> np.ndarray:
    r = np.empty(len(order), dtype=np.int64)
    r[list(order)] = np.arange(len(order))
    return r


def _changes(base_outputs: np.ndarray, corrupted: tuple, choices: np.ndarray, predict, original) -> bool:
    """Whether some assignment of ``choices`` to the ``corrupted`` models changes the prediction."""
    u, k = len(corrupted), len(choices)
    total = k**u
    for lo in range(0, total, 20000):  # assignment codes lo..hi-1, decoded as u base-k digits
        codes = np.arange(lo, min(total, lo + 20000), dtype=np.int64)
        idx = np.stack([(codes // k**p) % k for p in range(u)], axis=1)
        outs = np.repeat(base_outputs[None], codes.size, axis=0)
        outs[:, list(corrupted)] = choices[idx]
        if np.any(predict(outs) != original):
            return True
    return False


def min_models_to_change(base_outputs: np.ndarray, choices: np.ndarray, predict) -> int:
    """Smallest t such that some t models, outputting any of ``choices``, change the prediction.

    base_outputs: [M] (classes) or [M, C] (ranks); choices: [K] or [K, C]; predict maps
    [N, M(, C)] -> [N]. Models with identical outputs are interchangeable, so one subset per
    multiset of outputs is tried. Returns M + 1 if even all M cannot (never for >= 2 classes)."""
    original = predict(base_outputs[None])[0]
    n_models = base_outputs.shape[0]
    keys = [base_outputs[j].tobytes() for j in range(n_models)]
    for t in range(1, n_models + 1):
        seen = set()
        for subset in itertools.combinations(range(n_models), t):
            sig = tuple(sorted(keys[j] for j in subset))
            if sig in seen:
                continue
            seen.add(sig)
            if _changes(base_outputs, subset, choices, predict, original):
                return t
    return n_models + 1


def min_buckets_to_change(base_outputs: np.ndarray, bucket_models: np.ndarray, choices: np.ndarray, predict) -> int:
    """Smallest b such that corrupting some b buckets (every model fed by one of them outputs
    any of ``choices``) changes the prediction; B + 1 if none does."""
    original = predict(base_outputs[None])[0]
    n_buckets = bucket_models.shape[0]
    for b in range(1, n_buckets + 1):
        seen = set()
        for buckets in itertools.combinations(range(n_buckets), b):
            union = tuple(sorted(set(bucket_models[list(buckets)].ravel().tolist())))
            if union in seen:
                continue
            seen.add(union)
            if _changes(base_outputs, union, choices, predict, original):
                return b
    return n_buckets + 1
