"""DPA's certificate against brute force over adversarial vote moves (METHOD.md 8.2 item 1).

DPA's certificate is exact: the smallest number of base models whose votes, moved to any
classes, change the prediction is parts + 1. Checked on every vote vector of small ensembles
(exhaustive over M <= 5, C <= 3) and on random ones (M <= 7, C <= 4), all against
``min_models_to_change``, which enumerates every subset of t models and every class each
outputs (independent plurality vote, ties to the smaller index).
"""

import itertools

import numpy as np
import pytest
from count_bruteforce import min_models_to_change, plurality_ref

from certssb.certifier.dpa import dpa_certificate
from certssb.errors import ScoreInputError


def _votes_to_tops(votes) -> np.ndarray:
    return np.repeat(np.arange(len(votes)), votes)


def _brute(votes) -> int:
    c = len(votes)
    return min_models_to_change(_votes_to_tops(votes), np.arange(c), lambda tops: plurality_ref(tops, c))


def _compositions(total: int, parts: int):
    for cut in itertools.combinations(range(total + parts - 1), parts - 1):
        edges = (-1,) + cut + (total + parts - 1,)
        yield [edges[i + 1] - edges[i] - 1 for i in range(parts)]


def test_dpa_exhaustive_small_ensembles():
    cases = [v for m in range(1, 6) for c in (2, 3) for v in _compositions(m, c)]
    votes_list = [np.array(v) for v in cases]
    for v in votes_list:
        pred, parts = dpa_certificate(v[None])
        assert pred[0] == plurality_ref(_votes_to_tops(v)[None], len(v))[0]
        assert parts[0] + 1 == _brute(v), v
    assert len(votes_list) > 40


def test_dpa_random_against_brute_force():
    rng = np.random.default_rng(20240501)
    rows = []
    for _ in range(150):
        c = int(rng.integers(2, 5))
        m = int(rng.integers(1, 8))
        rows.append(np.bincount(rng.integers(0, c, size=m), minlength=c))
    for v in rows:
        pred, parts = dpa_certificate(v[None])
        assert parts[0] + 1 == _brute(v), v
        assert pred[0] == plurality_ref(_votes_to_tops(v)[None], len(v))[0]


@pytest.mark.parametrize(
    "votes,pred,parts",
    [
        ([3, 3], 0, 0),  # tie: class 0 wins; one vote 0 -> 1 flips
        ([2, 2, 0], 0, 0),
        ([0, 4, 4], 1, 0),  # tie between 1 and 2 goes to 1
        ([7, 0, 0, 0], 0, 3),  # unanimous: gap 7 -> 3 (4 moved votes give 3/4 against 0)
        ([0, 6], 1, 2),  # gap to class 0 is 6 - 0 - 1 = 5 -> 2
        ([1], None, None),  # one class only: rejected below
        ([4, 1, 2], 0, 1),  # gap_2 = 2 -> 1
        ([2, 5, 2], 1, 1),  # gap_0 = 5 - 2 - 1 = 2 -> 1, gap_2 = 3 -> 1
    ],
)
def test_dpa_edge_cases(votes, pred, parts):
    if pred is None:
        with pytest.raises(ScoreInputError):
            dpa_certificate([votes])
        return
    p, r = dpa_certificate(np.array([votes]))
    assert (p[0], r[0]) == (pred, parts)
    assert r[0] + 1 == _brute(np.array(votes))


def test_dpa_vectorised_rows_match_single_rows():
    rng = np.random.default_rng(3)
    v = np.stack([np.bincount(rng.integers(0, 5, size=11), minlength=5) for _ in range(200)])
    p, r = dpa_certificate(v, n_models=11)
    for i in range(0, 200, 17):
        pi, ri = dpa_certificate(v[i : i + 1])
        assert (p[i], r[i]) == (pi[0], ri[0])
    assert p.dtype == np.int64 and r.dtype == np.int64 and r.min() >= 0


@pytest.mark.parametrize(
    "votes,kw",
    [
        ([[1, 2], [2, 2]], {}),  # rows of different totals
        ([[1, 2]], {"n_models": 4}),  # does not sum to M
        ([[1, -1, 3]], {}),
        ([[1.5, 1.5]], {}),
        ([1, 2, 3], {}),  # not [m, C]
        ([[0, 0]], {}),  # M = 0
        (None, {}),
        ([["a", "b"]], {}),
    ],
)
def test_dpa_rejects_bad_votes_with_one_line(votes, kw):
    with pytest.raises(ScoreInputError) as err:
        dpa_certificate(votes, **kw)
    assert "\n" not in str(err.value)
