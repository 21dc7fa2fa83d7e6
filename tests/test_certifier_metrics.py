"""Metrics: hand-computed values, monotonicity, JSON-serialisability."""

import json

import numpy as np
import pytest

from certssb.certifier.metrics import certified_accuracy_curve, covered_fraction, summary_metrics
from certssb.errors import ConfigError


def test_curve_hand_computed_strict_inequality():
    correct = np.array([True, True, False, True, True])
    radius = np.array([0.0, 0.25, 1.0, 0.5, 2.0])
    ca = certified_accuracy_curve(correct, radius, [0.0, 0.25, 0.5, 1.0, 2.0, 2.5])
    np.testing.assert_allclose(ca, [3 / 5, 2 / 5, 1 / 5, 1 / 5, 0.0, 0.0])
    assert ca.dtype == np.float64


def test_summary_hand_computed_and_json():
    correct = np.array([True, True, False, True])
    radius = np.array([0.0, 0.5, 1.0, 0.25])
    abstain = np.array([True, False, False, False])
    s = summary_metrics(correct, radius, abstain)
    assert s == pytest.approx(
        {"accuracy": 0.75, "certified_ratio": 0.75, "conditional_accuracy": 2 / 3, "acr": 0.75 / 4, "abstain_rate": 0.25}
    )
    assert all(type(v) is float for v in s.values())
    json.dumps(s)


def test_summary_none_certified():
    s = summary_metrics([True, False], [0.0, 0.0], [True, True])
    assert s["conditional_accuracy"] is None and s["certified_ratio"] == 0.0 and s["acr"] == 0.0
    json.dumps(s)


@pytest.mark.parametrize("seed", range(20))
def test_curve_non_increasing_and_below_accuracy(seed):
    rng = np.random.default_rng(seed)
    m = 200
    correct = rng.random(m) < 0.8
    radius = np.where(rng.random(m) < 0.3, 0.0, rng.exponential(0.7, m))
    grid = np.arange(0, 2.51, 0.25)
    ca = certified_accuracy_curve(correct, radius, grid)
    s = summary_metrics(correct, radius, radius == 0)
    assert np.all(np.diff(ca) <= 0)
    assert np.all(ca <= s["accuracy"]) and ca[0] <= s["certified_ratio"]
    # independent loop computation
    for r, v in zip(grid, ca):
        assert v == pytest.approx(sum(c and rr > r for c, rr in zip(correct, radius)) / m)
    assert s["acr"] == pytest.approx(sum(rr for c, rr in zip(correct, radius) if c) / m)


def test_covered_fraction():
    radius = np.array([0.0, 0.5, 1.0, 1.5])
    assert covered_fraction(radius, 1.0) == 0.25  # strictly larger
    assert covered_fraction(radius, np.array([0.1, 0.1, 0.1, 2.0])) == 0.5
    assert covered_fraction(radius, 0.2, mask=[False, True, True, False]) == 1.0
    assert covered_fraction(radius, 0.2, mask=[False] * 4) is None
    assert type(covered_fraction(radius, 0.2)) is float


@pytest.mark.parametrize(
    "call",
    [
        lambda: certified_accuracy_curve([True], [1.0], [0.5, 0.25]),
        lambda: certified_accuracy_curve([True], [1.0], [-0.25, 0.0]),
        lambda: certified_accuracy_curve([True], [1.0], []),
        lambda: certified_accuracy_curve([True, False], [1.0], [0.0]),
        lambda: certified_accuracy_curve([], [], [0.0]),
        lambda: certified_accuracy_curve([True], [-1.0], [0.0]),
        lambda: certified_accuracy_curve([True], [np.nan], [0.0]),
        lambda: summary_metrics([True], [1.0], [True, False]),
        lambda: covered_fraction([1.0, 2.0], [1.0, 2.0, 3.0]),
        lambda: covered_fraction([1.0], 1.0, mask=[True, False]),
        lambda: covered_fraction([1.0], -1.0),
    ],
)
def test_rejects_bad_input(call):
    with pytest.raises(ConfigError) as err:
        call()
    assert "\n" not in str(err.value)
