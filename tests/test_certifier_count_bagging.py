"""Bagging (METHOD.md 8.2 item 4): bags, bounds and the certified number of modifications.

- Bags: a Monte Carlo of ``bag_indices`` bags; the share avoiding r given indices must match
  (1 - r/n)^s within 5 binomial standard deviations plus 1/K (K bags; a false failure has
  probability < 1e-6 per check, a wrong draw, e.g. without replacement or off by one in the
  range, moves the share by far more: see the numbers in each test).
- Certificate: checked with exact rational arithmetic (fractions.Fraction): the returned r
  satisfies ``p_A_lower - p_B_upper > 2 (1 - (1 - r/n)^s)`` and r + 1 does not, including inputs
  placed on the boundary itself and one float step either side of it.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from certssb.certifier.bagging import bag_indices, bagging_certificate, bagging_modifications
from certssb.errors import ConfigError, ScoreInputError


def _survives_exact(pa: float, pb: float, r: int, n: int, s: int) -> bool:
    return Fraction(pa) - Fraction(pb) > 2 * (1 - Fraction(n - r, n) ** s)


def _check_exact(pa, pb, n, s, got):
    if not pa > pb:
        assert got == -1
        return
    assert 0 <= got <= n
    assert _survives_exact(pa, pb, got, n, s)
    assert got == n or not _survives_exact(pa, pb, got + 1, n, s)


# ---------------------------------------------------------------- bags


def test_bag_share_avoiding_r_indices_matches_formula():
    n, s, k = 60, 25, 4000
    bags = np.stack([bag_indices(7, j, n, s) for j in range(k)])
    assert bags.dtype == np.int64 and bags.shape == (k, s)
    assert bags.min() == 0 and bags.max() == n - 1  # the whole range 0..n-1 and nothing else
    rng = np.random.default_rng(0)
    for r in (1, 3, 6, 15):
        for targets in (np.arange(r), rng.choice(n, size=r, replace=False)):
            share = np.mean(~np.isin(bags, targets).any(axis=1))
            expected = (1 - r / n) ** s
            tol = 5 * math.sqrt(expected * (1 - expected) / k) + 1 / k
            # e.g. r = 3: 0.2774 expected, tol 0.036; without replacement it would be 0.2428
            assert abs(share - expected) <= tol, (r, share, expected, tol)


def test_bag_draws_are_with_replacement_and_uniform():
    n, s = 10, 5000
    bag = bag_indices(3, 0, n, s)
    counts = np.bincount(bag, minlength=n)
    # chi-square goodness of fit, 9 dof: p < 1e-6 would flag a non-uniform draw
    assert stats.chisquare(counts).pvalue > 1e-6
    assert len(np.unique(bag_indices(3, 1, 100, 100))) < 100  # repeats occur (P(no repeat) ~ 1e-42)


def test_bag_regenerable_per_model():
    a = bag_indices(11, 5, 1000, 50)
    np.testing.assert_array_equal(a, bag_indices(11, 5, 1000, 50))  # alone, in another call
    for _ in range(3):
        bag_indices(11, 4, 1000, 50)  # drawing other bags first changes nothing
    np.testing.assert_array_equal(a, bag_indices(11, 5, 1000, 50))
    assert not np.array_equal(a, bag_indices(11, 6, 1000, 50))
    assert not np.array_equal(a, bag_indices(12, 5, 1000, 50))


def test_bag_seed_matches_project_seeding():
    from certssb.certifier.partition import derive_seed
    from certssb.seeding import derive_seed as project_derive_seed

    for seed, keys in [(0, ("bag", 0)), (123, ("bag", 17)), (5, ("partition_index",))]:
        assert derive_seed(seed, *keys) == project_derive_seed(seed, *keys)
    expected = np.random.Generator(np.random.PCG64(project_derive_seed(9, "bag", 2))).integers(0, 77, size=13)
    np.testing.assert_array_equal(bag_indices(9, 2, 77, 13), expected)


@pytest.mark.parametrize("args", [(1.5, 0, 10, 5), (1, -1, 10, 5), (1, 0, 0, 5), (1, 0, 10, 0), (True, 0, 10, 5)])
def test_bag_rejects_bad_arguments(args):
    with pytest.raises(ConfigError) as err:
        bag_indices(*args)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- certified r


def test_modifications_hand_computed():
    # pa - pb = 0.85: (1 - r/1000)^100 > 0.575 <=> r < 1000 (1 - 0.575^0.01) = 5.52 -> r = 5
    got = bagging_modifications([0.9, 0.5, 0.3, 1.0], [0.05, 0.5, 0.2, 0.0], 1000, 100)
    assert got.dtype == np.int64
    assert got[0] == 5
    assert got[1] == -1  # pa == pb: abstain
    assert got[2] == 0  # pa - pb = 0.1 > 0, but r = 1 needs > 2 (1 - 0.999^100) = 0.19
    assert got[3] == 6  # pa - pb = 1: 0.5^(1/100) = 0.99309 -> r < 6.91


def test_modifications_random_against_exact_arithmetic():
    rng = np.random.default_rng(1)
    for n, s in [(10, 1), (10, 3), (100, 7), (1000, 50), (5000, 2000), (60000, 30000)]:
        pa = rng.random(60)
        pb = pa * rng.random(60) ** 3
        pb[:5] = pa[:5]  # ties: abstain
        pb[5:10] = 0.0
        pa[10:12] = 1.0
        got = bagging_modifications(pa, pb, n, s)
        for i in range(0, 60, 1 if s < 1000 else 7):
            _check_exact(float(pa[i]), float(pb[i]), n, s, int(got[i]))
        assert got.max() >= 1


@pytest.mark.parametrize("n,s,r", [(4, 2, 1), (8, 3, 2), (16, 4, 5), (2, 9, 1), (1024, 3, 100)])
def test_modifications_exactly_on_the_boundary(n, s, r):
    # n a power of 2: 2 (1 - ((n - r)/n)^s) is a dyadic rational, a float when it fits 53 bits.
    boundary = 2 * (1 - Fraction(n - r, n) ** s)
    assert Fraction(float(boundary)) == boundary
    pa = float(boundary)
    for p in (np.nextafter(pa, 0.0), pa, np.nextafter(pa, 2.0)):
        if p > 1.0:
            continue
        got = int(bagging_modifications([p], [0.0], n, s)[0])
        _check_exact(float(p), 0.0, n, s, got)
        assert got == (r if p > pa else r - 1)  # on the boundary itself r fails (strict >)


@pytest.mark.parametrize("n,s,r", [(1000, 50, 10), (60000, 100, 300), (7, 5, 2), (99991, 7, 1234)])
def test_modifications_next_to_a_non_dyadic_boundary(n, s, r):
    boundary = 2 * (1 - Fraction(n - r, n) ** s)
    pb = 0.125
    near = float(boundary + Fraction(pb))
    candidates = [near, float(np.nextafter(near, 0.0)), float(np.nextafter(near, 2.0))]
    for pa in candidates:
        if pa <= 1.0:
            _check_exact(pa, pb, n, s, int(bagging_modifications([pa], [pb], n, s)[0]))


def _survives_exact_int(pa: float, pb: float, r: int, n: int, s: int) -> bool:
    """The same inequality multiplied out by the positive denominators (no gcd: fast for big s)."""
    d = Fraction(pa) - Fraction(pb)
    p, q = d.numerator, d.denominator
    return (n - r) ** s * 2 * q > n**s * (2 * q - p)


def test_modifications_large_inputs():
    n, s = 100_000, 20_000
    rng = np.random.default_rng(2)
    pa = rng.uniform(0.5, 1.0, 20000)
    pb = rng.uniform(0.0, 0.5, 20000)
    got = bagging_modifications(pa, pb, n, s)
    assert got.min() >= 0 and got.max() > 0
    for i in range(0, 20000, 5000):
        r = int(got[i])
        assert _survives_exact_int(float(pa[i]), float(pb[i]), r, n, s)
        assert not _survives_exact_int(float(pa[i]), float(pb[i]), r + 1, n, s)
    # all rows, in floating point: r inside the region and r + 1 outside (up to rounding)
    lhs = 2 * -np.expm1(s * np.log1p(-got / n))
    lhs1 = 2 * -np.expm1(s * np.log1p(-(got + 1) / n))
    assert np.all(lhs < (pa - pb) * (1 + 1e-9)) and np.all(lhs1 > (pa - pb) * (1 - 1e-9))


@pytest.mark.parametrize(
    "pa,pb,n,s,err",
    [([0.5], [0.2, 0.1], 10, 2, ScoreInputError), ([1.5], [0.2], 10, 2, ScoreInputError), ([np.nan], [0.2], 10, 2, ScoreInputError),
     ([0.5], [0.2], 0, 2, ConfigError), ([0.5], [0.2], 10, 2.0, ConfigError)],
)
def test_modifications_reject_bad_input(pa, pb, n, s, err):
    with pytest.raises(err) as e:
        bagging_modifications(pa, pb, n, s)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------- from votes


def test_certificate_bounds_are_the_corrected_clopper_pearson():
    votes = np.array([[90, 6, 4], [40, 35, 25], [50, 50, 0], [100, 0, 0]])
    alpha = 0.001
    cert = bagging_certificate(votes, 1000, 100, alpha=alpha, n_models=100)
    a = alpha / (2 * 3)  # Bonferroni over C = 3 lower and 3 upper bounds
    assert cert.pb_mode == "bonferroni" and cert.alpha_per_bound == pytest.approx(a)
    np.testing.assert_array_equal(cert.prediction, [0, 0, 0, 0])
    assert cert.p_a_lower[0] == pytest.approx(stats.beta.ppf(a, 90, 11), rel=1e-12)
    assert cert.p_b_upper[0] == pytest.approx(stats.beta.ppf(1 - a, 7, 94), rel=1e-12)
    assert cert.p_a_lower[3] == pytest.approx(a ** (1 / 100), rel=1e-12)  # k = n: alpha^(1/n)
    np.testing.assert_array_equal(cert.modifications, bagging_modifications(cert.p_a_lower, cert.p_b_upper, 1000, 100))
    assert cert.modifications[0] >= 1
    assert cert.modifications[1] == -1 and cert.modifications[2] == -1  # abstain
    for i in range(4):
        _check_exact(float(cert.p_a_lower[i]), float(cert.p_b_upper[i]), 1000, 100, int(cert.modifications[i]))


def test_certificate_two_classes_uses_the_complement():
    cert = bagging_certificate([[95, 5], [5, 95]], 500, 20, alpha=0.01)
    assert cert.pb_mode == "complement" and cert.alpha_per_bound == pytest.approx(0.005)
    np.testing.assert_allclose(cert.p_b_upper, 1 - cert.p_a_lower)
    np.testing.assert_array_equal(cert.prediction, [0, 1])
    assert cert.modifications[0] == cert.modifications[1] >= 1


@pytest.mark.parametrize(
    "votes,kw,err",
    [
        ([[3, 2], [4, 2]], {}, ScoreInputError),  # rows of different totals
        ([[3, 2]], {"n_models": 6}, ScoreInputError),
        ([[3, -2]], {}, ScoreInputError),
        ([[3, 2]], {"alpha": 0.0}, ConfigError),
        ([[3, 2]], {"pb_mode": "max"}, ConfigError),
    ],
)
def test_certificate_rejects_bad_input(votes, kw, err):
    kw = {"alpha": 0.01, **kw}
    with pytest.raises(err) as e:
        bagging_certificate(votes, 100, 10, **kw)
    assert "\n" not in str(e.value)
