"""Ranks, votes and predictions of base models, against their definitions."""

import numpy as np
import pytest

from certssb.certifier.ranks import (
    check_ranks,
    check_votes,
    predictions_from_ranks,
    ranks_from_logits,
    votes_from_predictions,
    votes_from_ranks,
)
from certssb.errors import ScoreInputError


def _ranks_by_definition(x: np.ndarray) -> np.ndarray:
    """rank of c = #classes with a larger score + #classes with an equal score and smaller index."""
    c = x.shape[-1]
    larger = (x[..., None, :] > x[..., :, None]).sum(axis=-1)
    idx = np.arange(c)
    equal_before = ((x[..., None, :] == x[..., :, None]) & (idx[None, :] < idx[:, None])).sum(axis=-1)
    return larger + equal_before


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.float16])
def test_ranks_from_logits_match_definition_with_ties(dtype):
    rng = np.random.default_rng(0)
    x = rng.integers(-2, 3, size=(50, 6, 5)).astype(dtype)  # many ties
    r = ranks_from_logits(x)
    assert r.dtype == np.int8
    np.testing.assert_array_equal(r, _ranks_by_definition(x.astype(np.float64)))
    check_ranks(r)  # every row a permutation


def test_ranks_from_logits_infinities_and_many_classes():
    x = np.array([[[0.0, -np.inf, np.inf, 0.0]]])
    np.testing.assert_array_equal(ranks_from_logits(x), [[[1, 3, 0, 2]]])
    big = np.random.default_rng(1).normal(size=(2, 3, 200))
    r = ranks_from_logits(big)
    assert r.dtype == np.int16
    np.testing.assert_array_equal(r, _ranks_by_definition(big))


def test_votes_and_predictions():
    rng = np.random.default_rng(2)
    r = ranks_from_logits(rng.normal(size=(40, 9, 4)))
    p = predictions_from_ranks(r)
    np.testing.assert_array_equal(p, np.argmax(-r, axis=2))
    v = votes_from_ranks(r)
    assert v.dtype == np.int64 and np.all(v.sum(axis=1) == 9)
    for i in range(40):
        np.testing.assert_array_equal(v[i], np.bincount(p[i], minlength=4))
    np.testing.assert_array_equal(votes_from_predictions(p, 4), v)


@pytest.mark.parametrize(
    "logits",
    [np.zeros((2, 3)), np.zeros((1, 2, 1)), np.array([[[0.0, np.nan]]]), np.array([[["a", "b"]]]), np.zeros((1, 0, 3))],
)
def test_ranks_from_logits_rejects_bad_input(logits):
    with pytest.raises(ScoreInputError) as err:
        ranks_from_logits(logits)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "ranks",
    [[[[0, 0]]], [[[1, 2]]], [[[0, 1]], [[1, 1]]], [[[-1, 0]]], [[0, 1]], [[[True, False]]], None],
)
def test_check_ranks_rejects_non_permutations(ranks):
    with pytest.raises(ScoreInputError) as err:
        check_ranks(ranks)
    assert "\n" not in str(err.value)


def test_check_votes_accepts_and_rejects():
    np.testing.assert_array_equal(check_votes([[1, 2], [3, 0]], n_models=3), [[1, 2], [3, 0]])
    assert check_votes(np.zeros((0, 3), dtype=np.int64)).shape == (0, 3)
    for bad, kw in [([[1, 2], [3, 1]], {}), ([[1, 2]], {"n_models": 2}), ([[1, 2]], {"n_models": 0}), ([[3]], {})]:
        with pytest.raises(ScoreInputError) as err:
            check_votes(bad, **kw)
        assert "\n" not in str(err.value)
