"""Confidence bounds against independent computations and by coverage simulation."""

import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from scipy import optimize, stats

from certssb.certifier.bounds import (
    clopper_pearson_lower,
    clopper_pearson_upper,
    hoeffding_lower,
    hoeffding_margin,
    hoeffding_upper,
)
from certssb.errors import ConfigError

CERTIFY_DIR = pathlib.Path(__file__).resolve().parents[1] / "certssb" / "certifier"


def _tolerance(alpha, trials):
    """Allowed excess of an empirical failure rate over alpha (5 binomial sds)."""
    return 5.0 * math.sqrt(alpha * (1 - alpha) / trials) + 1.0 / trials


# ---------------------------------------------------------------- Hoeffding


def test_hoeffding_hand_computed():
    # n = 1000, alpha = 0.001: margin = sqrt(ln(1000) / 2000) = 0.0587754...
    margin = math.sqrt(math.log(1000.0) / 2000.0)
    assert abs(margin - 0.058775) < 1e-5
    assert hoeffding_lower(0.9, 1000, 0.001) == pytest.approx(0.9 - margin, abs=1e-15)
    assert hoeffding_upper(0.1, 1000, 0.001) == pytest.approx(0.1 + margin, abs=1e-15)
    # n = 200, alpha = 0.05: margin = sqrt(ln 20 / 400) = 0.0865409...
    assert hoeffding_margin(200, 0.05) == pytest.approx(math.sqrt(math.log(20.0) / 400.0), rel=1e-14)
    assert hoeffding_margin(200, 0.05) == pytest.approx(0.0865409, abs=1e-6)


def test_hoeffding_clipped_and_vectorised():
    means = np.array([0.0, 0.01, 0.5, 0.99, 1.0])
    lo = hoeffding_lower(means, 100, 0.05)
    hi = hoeffding_upper(means, 100, 0.05)
    assert lo.shape == hi.shape == (5,)
    assert np.all(lo >= 0) and np.all(hi <= 1)
    assert lo[0] == 0.0 and hi[-1] == 1.0
    assert np.all(lo < means + 1e-15) and np.all(hi > means - 1e-15)
    assert lo[-1] < 1.0 and hi[0] > 0.0  # never 1 / 0: keeps Phi^-1 finite
    # per-row n broadcasts
    lo2 = hoeffding_lower(np.array([[0.5], [0.5]]), np.array([[100], [400]]), 0.05)
    assert lo2[0, 0] < lo2[1, 0]


@pytest.mark.parametrize("p,n", [(0.5, 10), (0.9, 50), (0.2, 200), (0.99, 1000)])
def test_hoeffding_coverage_bounded_scores(p, n):
    alpha, trials = 0.05, 20000
    rng = np.random.default_rng(1234 + n)
    # Bernoulli(p) scores (the worst case of Hoeffding) with known mean p
    means = rng.binomial(n, p, size=trials) / n
    fail_lo = np.mean(hoeffding_lower(means, n, alpha) > p)
    fail_hi = np.mean(hoeffding_upper(means, n, alpha) < p)
    tol = _tolerance(alpha, trials)
    assert fail_lo <= alpha + tol and fail_hi <= alpha + tol


def test_hoeffding_coverage_continuous_scores():
    # Beta(2, 3) scores in [0, 1] with mean 0.4
    alpha, trials, n = 0.1, 20000, 20
    rng = np.random.default_rng(7)
    means = rng.beta(2.0, 3.0, size=(trials, n)).mean(axis=1)
    tol = _tolerance(alpha, trials)
    assert np.mean(hoeffding_lower(means, n, alpha) > 0.4) <= alpha + tol
    assert np.mean(hoeffding_upper(means, n, alpha) < 0.4) <= alpha + tol


# ---------------------------------------------------------------- Clopper-Pearson


@pytest.mark.parametrize("n", [1, 7, 50, 1000])
@pytest.mark.parametrize("alpha", [0.001, 0.05, 0.2])
def test_clopper_pearson_matches_binomtest(n, alpha):
    ks = np.unique(np.linspace(0, n, min(n + 1, 12)).round().astype(int))
    lo = clopper_pearson_lower(ks, n, alpha)
    hi = clopper_pearson_upper(ks, n, alpha)
    for i, k in enumerate(ks):
        ci = stats.binomtest(int(k), n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact")
        assert lo[i] == pytest.approx(ci.low, abs=1e-10)
        assert hi[i] == pytest.approx(ci.high, abs=1e-10)


@pytest.mark.parametrize("n,alpha", [(10, 0.05), (100, 0.001), (1000, 0.0005), (37, 0.2)])
def test_clopper_pearson_brute_force_binomial_tails(n, alpha):
    """Lower p_L solves P(X >= k | p_L) = alpha; upper p_U solves P(X <= k | p_U) = alpha."""
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        lo = float(clopper_pearson_lower(k, n, alpha))
        hi = float(clopper_pearson_upper(k, n, alpha))
        if k == 0:
            assert lo == 0.0
        else:
            root = optimize.brentq(lambda p: stats.binom.sf(k - 1, n, p) - alpha, 1e-15, 1 - 1e-15, xtol=1e-14)
            assert lo == pytest.approx(root, abs=1e-9)
        if k == n:
            assert hi == 1.0
        else:
            root = optimize.brentq(lambda p: stats.binom.cdf(k, n, p) - alpha, 1e-15, 1 - 1e-15, xtol=1e-14)
            assert hi == pytest.approx(root, abs=1e-9)


def test_clopper_pearson_edges_are_strict():
    # k = n: lower = alpha^(1/n) < 1;  k = 0: upper = 1 - alpha^(1/n) > 0
    assert float(clopper_pearson_lower(20, 20, 0.01)) == pytest.approx(0.01 ** (1 / 20), rel=1e-12)
    assert float(clopper_pearson_upper(0, 20, 0.01)) == pytest.approx(1 - 0.01 ** (1 / 20), rel=1e-12)
    assert float(clopper_pearson_lower(1, 1, 0.5)) == pytest.approx(0.5)


@pytest.mark.parametrize("p,n", [(0.5, 20), (0.9, 100), (0.03, 300), (0.6, 1000)])
def test_clopper_pearson_coverage(p, n):
    alpha, trials = 0.05, 20000
    rng = np.random.default_rng(99 + n)
    k = rng.binomial(n, p, size=trials)
    tol = _tolerance(alpha, trials)
    assert np.mean(clopper_pearson_lower(k, n, alpha) > p) <= alpha + tol
    assert np.mean(clopper_pearson_upper(k, n, alpha) < p) <= alpha + tol


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("fn", [hoeffding_lower, hoeffding_upper])
@pytest.mark.parametrize("n,alpha", [(0, 0.05), (-3, 0.05), (10, 0.0), (10, 1.0), (10, float("nan")), (2.5, 0.1)])
def test_hoeffding_rejects_bad_config(fn, n, alpha):
    with pytest.raises(ConfigError) as err:
        fn(0.5, n, alpha)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("fn", [clopper_pearson_lower, clopper_pearson_upper])
@pytest.mark.parametrize("k,n,alpha", [(1, 0, 0.05), (1, 10, 0.0), (1, 10, 1.5), (11, 10, 0.05), (-1, 10, 0.05), (1.5, 10, 0.05)])
def test_clopper_pearson_rejects_bad_input(fn, k, n, alpha):
    with pytest.raises(ConfigError) as err:
        fn(k, n, alpha)
    assert "\n" not in str(err.value)


def test_certify_package_does_not_import_torch():
    for path in CERTIFY_DIR.glob("*.py"):
        text = path.read_text()
        assert "import torch" not in text and "from torch" not in text, path
    code = "import sys, certssb.certifier; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=CERTIFY_DIR.parents[1])
