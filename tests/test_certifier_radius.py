"""Radius variants against hand-computed values."""

import numpy as np
import pytest
from scipy import stats

from certssb.certifier.radius import RADIUS_VARIANTS, radius_variants
from certssb.errors import ConfigError


def test_hand_computed_values():
    gap = np.array([0.0, 2.0, 1.0, 3.0])
    sx = np.array([0.5, 0.5, 0.3, 1.0])
    r = radius_variants(gap, sx, 0.25)
    assert set(r) == set(RADIUS_VARIANTS)
    np.testing.assert_allclose(r["paper"], [0.0, 0.5, 0.15, 1.5])
    np.testing.assert_allclose(r["joint"], [0.0, 0.25, 0.125, 0.375])
    np.testing.assert_allclose(r["budget"], [0.0, 1.0, 0.5, 1.5])
    for v in r.values():
        assert v.dtype == np.float64 and v.shape == (4,)


def test_rab_binary_complement_is_sigma_times_phi_inverse():
    """RAB, binary, complement: pB_upper = 1 - pA_lower, so sigma*G/2 = sigma*Phi^-1(pA_lower)."""
    for pa, sigma in [(stats.norm.cdf(1.0), 0.5), (0.99, 0.25), (0.75, 1.0), (0.6, 0.12)]:
        gap = np.array([stats.norm.ppf(pa) - stats.norm.ppf(1 - pa)])
        r = radius_variants(gap, sigma, sigma)
        want = sigma * stats.norm.ppf(pa)
        for key in ("paper", "joint"):
            assert r[key][0] == pytest.approx(want, rel=1e-12)
    r = radius_variants(np.array([2.0]), 0.5, 0.5)
    assert r["paper"][0] == pytest.approx(0.5) and r["joint"][0] == pytest.approx(0.5)


def test_equal_sigmas_give_equal_variants_and_joint_never_exceeds_paper():
    rng = np.random.default_rng(0)
    for _ in range(50):
        gap = rng.uniform(0, 5, size=20) * (rng.random(20) > 0.3)
        sigma = float(rng.uniform(0.05, 2))
        r = radius_variants(gap, np.full(20, sigma), sigma)
        np.testing.assert_array_equal(r["paper"], r["joint"])
        np.testing.assert_allclose(r["paper"], sigma * r["budget"], rtol=1e-15)
        sx = rng.uniform(0.05, 2, size=20)
        tr = rng.uniform(0.05, 2, size=100)
        r = radius_variants(gap, sx, tr.min())
        assert np.all(r["joint"] <= r["paper"])
        np.testing.assert_array_equal(r["paper"][gap == 0], 0.0)
        np.testing.assert_array_equal(r["joint"][gap == 0], 0.0)
        np.testing.assert_array_equal(r["budget"][gap == 0], 0.0)
        # array of training sigmas -> its minimum is used
        np.testing.assert_array_equal(radius_variants(gap, sx, tr)["joint"], r["joint"])


@pytest.mark.parametrize(
    "gap,sx,st",
    [
        ([1.0], 0.0, 0.5),
        ([1.0], -0.1, 0.5),
        ([1.0], 0.5, 0.0),
        ([1.0], float("nan"), 0.5),
        ([1.0], 0.5, float("inf")),
        ([-1.0], 0.5, 0.5),
        ([float("inf")], 0.5, 0.5),
    ],
)
def test_rejects_bad_input(gap, sx, st):
    with pytest.raises(ConfigError) as err:
        radius_variants(np.array(gap), sx, st)
    assert "\n" not in str(err.value)
