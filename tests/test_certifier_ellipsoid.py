"""Exact-ellipsoid certificates against independent computations: the Mahalanobis norm of the
explicit joint perturbation, a Monte-Carlo check of the worst-case classifier, the fixed-sigma
closed form and a brute-force search for the poison count, and the storage-update memory."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from certssb.certifier import (
    NOT_CERTIFIED,
    RealisedAttack,
    certified_poison_count,
    covered_after_memory,
    poison_certified_accuracy,
    poison_count_after_memory,
    poison_count_grid,
    resolve_poison_sizes,
    storage_update,
    whitened_attack_size,
)
from certssb.errors import ConfigError


def _joint_problem(rng, dim_x=3, n_train=5, dim_train=2, poisoned=(0, 2, 3)):
    """Explicit perturbation vectors and the diagonal covariance of the joint noise."""
    sigma_x = rng.uniform(0.2, 1.0)
    sig_train = rng.uniform(0.1, 1.0, n_train)
    delta = rng.normal(size=dim_x) * 0.3
    deltas = np.zeros((n_train, dim_train))
    for i in poisoned:
        deltas[i] = rng.normal(size=dim_train) * 0.2
    z = np.concatenate([delta, deltas.reshape(-1)])
    var = np.concatenate([np.full(dim_x, sigma_x ** 2), np.repeat(sig_train ** 2, dim_train)])
    return sigma_x, sig_train, delta, deltas, np.asarray(poisoned), z, var


def test_whitened_size_is_the_mahalanobis_norm_of_the_joint_perturbation():
    rng = np.random.default_rng(0)
    for _ in range(20):
        sx, st, delta, deltas, p, z, var = _joint_problem(rng)
        expected = np.sqrt(z @ np.diag(1.0 / var) @ z)  # z^T Sigma^-1 z with the full covariance
        got = whitened_attack_size(np.linalg.norm(delta), sx, np.linalg.norm(deltas[p], axis=1), st[p])
        assert got == pytest.approx(expected, rel=1e-12)
        attack = RealisedAttack(p, np.linalg.norm(deltas[p], axis=1), [np.linalg.norm(delta)])
        assert attack.whitened([0], sx, st)[0] == pytest.approx(expected, rel=1e-12)
        assert attack.joint_l2([0])[0] == pytest.approx(np.linalg.norm(z), rel=1e-12)


def test_monte_carlo_worst_case_classifier_flips_exactly_at_the_ellipsoid():
    """Binary smoothed classifier with pA = Phi(G/2) (so G = Phi^-1(pA) - Phi^-1(1 - pA) = 2 Phi^-1(pA)).
    The worst decision region for a shift z is the half-space orthogonal to Sigma^-1 z; under
    N(z, Sigma) it keeps probability Phi(G/2 - ||z||_Sigma). Simulated: the prediction survives a
    shift whose whitened size is 0.9 G/2 and flips at 1.1 G/2, whatever the split between the test
    and the training blocks; a random half-space never does worse than the bound."""
    rng = np.random.default_rng(1)
    n = 200_000
    sx, st, delta, deltas, p, z_dir, var = _joint_problem(rng)
    sd = np.sqrt(var)
    u = rng.normal(size=(n, var.size)) * sd  # draws of the joint noise N(0, Sigma)
    half_g = 0.8
    p_a = stats.norm.cdf(half_g)
    for scale_to in (0.9, 1.1):
        w_size = whitened_attack_size(np.linalg.norm(delta), sx, np.linalg.norm(deltas[p], axis=1), st[p])
        z = z_dir * (scale_to * half_g / w_size)  # same shape of attack, whitened size scale_to * G/2
        w = z / var  # Sigma^-1 z: the worst direction
        t = stats.norm.ppf(p_a) * np.sqrt(w @ (var * w))  # P_0(w.u < t) = pA
        shifted = np.mean((u + z) @ w < t)
        predicted = stats.norm.cdf(half_g - scale_to * half_g)
        se = np.sqrt(predicted * (1 - predicted) / n)
        assert abs(shifted - predicted) < 5 * se
        assert (shifted > 0.5) == (scale_to < 1.0)  # certified inside the ellipsoid, flipped outside
        for _ in range(5):  # any other half-space with P_0 = pA keeps at least the bound
            v = rng.normal(size=var.size)
            tv = stats.norm.ppf(p_a) * np.sqrt(v @ (var * v))
            assert np.mean((u + z) @ v < tv) >= predicted - 5 * se


def _closed_form(budget, sigma_x, sigma_t, eps, eta, n):
    bound = sigma_t ** 2 * (budget ** 2 - eps ** 2 / sigma_x ** 2) / eta ** 2
    return np.where(bound > 0, np.minimum(np.ceil(bound) - 1, n), NOT_CERTIFIED).astype(np.int64), bound


def test_poison_count_matches_the_fixed_sigma_closed_form():
    rng = np.random.default_rng(2)
    n = 300
    for _ in range(30):
        sigma_t = rng.uniform(0.1, 1.0)
        b = rng.uniform(0.0, 3.0, 200)
        b[:5] = 0.0  # abstentions
        sx = rng.uniform(0.1, 1.0, 200)
        eps, eta = rng.uniform(0, 0.5), rng.uniform(0.01, 0.5)
        got = certified_poison_count(b, sx, np.full(n, sigma_t), eps, eta)
        expected, bound = _closed_form(b, sx, sigma_t, eps, eta, n)
        safe = np.abs(bound - np.round(bound)) > 1e-9  # exact ties are decided by rounding
        np.testing.assert_array_equal(got[safe], expected[safe])
        assert (got[:5] == NOT_CERTIFIED).all()
        assert got.min() >= -1 and got.max() <= n


def test_poison_count_matches_brute_force_over_all_subsets():
    """Largest k such that EVERY subset of k training samples (each moved by eta) stays inside."""
    rng = np.random.default_rng(3)
    n = 7
    for _ in range(40):
        sig = rng.uniform(0.1, 1.0, n)
        b, sx = rng.uniform(0.05, 2.5), rng.uniform(0.1, 1.0)
        eps, eta = rng.uniform(0, 0.6), rng.uniform(0.05, 0.6)

        def all_subsets_inside(k):
            return all(eps ** 2 / sx ** 2 + eta ** 2 * sum(sig[j] ** -2 for j in s) < b ** 2
                       for s in itertools.combinations(range(n), k))

        brute = max([k for k in range(n + 1) if all_subsets_inside(k)], default=NOT_CERTIFIED)
        got = certified_poison_count([b], sx, rng.permutation(sig), eps, eta)[0]  # order must not matter
        assert got == brute


def test_poison_count_boundary_is_strict():
    """Exactly representable costs: each sample costs eta^2 / sigma^2 = 1 of a budget^2 = 4."""
    sig = np.full(10, 0.5)
    assert certified_poison_count([2.0], 1.0, sig, 0.0, 0.5)[0] == 3  # 3 < 4, but 4 is not < 4
    assert certified_poison_count([2.0], 0.5, sig, 1.0, 0.5)[0] == NOT_CERTIFIED  # eps^2/sx^2 = 4: not < 4
    assert certified_poison_count([2.0], 1.0, sig, 1.0, 0.5)[0] == 2  # 1 + k < 4


def test_poison_count_is_monotone():
    rng = np.random.default_rng(4)
    sig = rng.uniform(0.1, 1.0, 500)
    b = rng.uniform(0, 3, 100)
    sx = rng.uniform(0.1, 1.0, 100)
    counts = [certified_poison_count(b, sx, sig, 0.1, eta) for eta in (0.05, 0.1, 0.2, 0.4)]
    assert all((a >= c).all() for a, c in zip(counts, counts[1:]))  # larger eta: fewer samples
    counts = [certified_poison_count(b, sx, sig, eps, 0.1) for eps in (0.0, 0.1, 0.3)]
    assert all((a >= c).all() for a, c in zip(counts, counts[1:]))  # larger eps: fewer samples
    assert (certified_poison_count(b * 1.5, sx, sig, 0.1, 0.1) >= counts[1]).all()  # larger budget: more
    assert (certified_poison_count(b, sx, sig * 0.5, 0.1, 0.1) <= counts[1]).all()  # smaller sigmas: fewer
    # eta = 0: nothing the training samples do costs anything; eps = 0: -1 exactly at abstentions
    zero_eta = certified_poison_count(b, sx, sig, 0.1, 0.0)
    assert set(np.unique(zero_eta)) <= {NOT_CERTIFIED, 500}
    assert ((certified_poison_count(b, sx, sig, 0.0, 0.1) == NOT_CERTIFIED) == (b == 0)).all()


def test_poison_count_grid_and_curve():
    assert poison_count_grid(0) == [0]
    assert poison_count_grid(7) == [0, 1, 2, 5, 7]
    assert poison_count_grid(10) == [0, 1, 2, 5, 10]
    assert poison_count_grid(1438) == [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 1438]
    correct = np.array([True, True, False, True, True])
    counts = np.array([-1, 0, 5, 3, 10])
    ca = poison_certified_accuracy(correct, counts, [0, 1, 3, 4, 10, 11])
    np.testing.assert_allclose(ca, [3 / 5, 2 / 5, 2 / 5, 1 / 5, 1 / 5, 0.0])


def test_bad_inputs_are_config_errors():
    with pytest.raises(ConfigError):
        certified_poison_count([1.0], 0.5, [0.5, 0.0], 0.1, 0.1)
    with pytest.raises(ConfigError):
        certified_poison_count([1.0], 0.5, [0.5], -0.1, 0.1)
    with pytest.raises(ConfigError):
        whitened_attack_size([0.1], 0.5, [0.1, 0.2], [0.5])


def test_resolve_poison_sizes_defaults_to_the_realised_maxima():
    attack = RealisedAttack([3, 9], [0.8, 1.0], [0.5, 0.9, 0.7])
    sizes = resolve_poison_sizes(attack, None, None)
    assert (sizes.eta, sizes.eps) == (1.0, 0.9)
    assert "max" in sizes.eta_source and "max" in sizes.eps_source
    sizes = resolve_poison_sizes(attack, 0.25, 0.0)
    assert (sizes.eta, sizes.eps) == (0.25, 0.0) and sizes.eps_source == "certifier.poison_eps"
    no_poison = RealisedAttack([], [], [0.5, 0.9])
    assert resolve_poison_sizes(no_poison, None, None).eta == 0.9
    with pytest.raises(ConfigError):
        resolve_poison_sizes(attack, -1.0, None)


def _memory_setup(seed):
    rng = np.random.default_rng(seed)
    m, d = 40, 2
    x = rng.uniform(0, 3, (m, d))
    labels = rng.integers(0, 2, m)
    sx = rng.uniform(0.3, 1.0, m)
    sig_train = rng.uniform(0.2, 1.0, 6)
    budget = rng.uniform(0, 1.5, m)
    radius = np.minimum(sx, sig_train.min()) * budget  # the joint radius
    res = storage_update(x, labels, radius, np.arange(m))
    return rng, x, sx, sig_train, budget, radius, res


@pytest.mark.parametrize("seed", [0, 1])
def test_covered_after_memory_is_sound_by_simulation(seed):
    """Sample attacks (test trigger, training perturbation of two samples); wherever the final
    exact test says covered, check the argument of ``covered_after_memory`` directly:
    kept/trimmed: the raw ellipsoid holds and x + delta lies in no stored ball of another label;
    relabelled: the joint perturbation seen from x_j* lies in j*'s joint L2 ball as stored."""
    rng, x, sx, sig_train, budget, radius, res = _memory_setup(seed)
    assert res.n_trimmed + res.n_relabelled > 0
    stored = res.radius  # every input's ball as the memory stored it
    other_label = res.label[:, None] != res.label[None, :]
    draws, checked = 300, 0
    for i in range(len(x)):
        delta = rng.normal(size=(draws, 2)) * rng.uniform(0, 0.8, (draws, 1))
        train_l2 = np.abs(rng.normal(size=(draws, 2))) * rng.uniform(0, 0.3, (draws, 1))
        d = np.linalg.norm(delta, axis=1)
        w = np.sqrt(np.sum((train_l2 / sig_train[:2]) ** 2, axis=1) + (d / sx[i]) ** 2)
        joint = np.sqrt(d ** 2 + np.sum(train_l2 ** 2, axis=1))
        covered = covered_after_memory([res.action[i]] * draws, [radius[i]] * draws, [stored[i]] * draws,
                                       [budget[i]] * draws, w, d, joint)
        q = x[i] + delta[covered]
        checked += int(covered.sum())
        dist = np.linalg.norm(q[:, None, :] - x[None, :, :], axis=2)  # [covered draws, inputs]
        assert not np.any((dist < stored[None, :]) & other_label[i][None, :])
        if res.action[i] == "relabelled":
            owners = (~other_label[i]) & (np.linalg.norm(x - x[i], axis=1) < stored)
            joint_from_owner = np.sqrt(np.sum(train_l2[covered] ** 2, axis=1)[:, None] + dist ** 2)
            assert np.all(np.any((joint_from_owner < stored[None, :]) & owners[None, :], axis=1))
        else:
            assert np.all(w[covered] < budget[i]) and res.label[i] == res.label_before[i]
    assert checked > 100


def test_memory_rules_reduce_to_the_raw_test_and_shrink_with_the_radius():
    rng, x, sx, sig_train, budget, radius, res = _memory_setup(5)
    n = len(sig_train)
    w = rng.uniform(0, 1.5, len(x))
    d = rng.uniform(0, 0.5, len(x))
    j = np.sqrt(d ** 2 + 0.01)
    kept = ["kept"] * len(x)
    # nothing changed: the exact test is the raw one, restricted to triggers inside the L2 ball
    np.testing.assert_array_equal(covered_after_memory(kept, radius, radius, budget, w, d, j),
                                  (w < budget) & (d < radius))
    raw = certified_poison_count(budget, sx, sig_train, 0.1, 0.2)
    same = poison_count_after_memory(kept, radius, radius, budget, sx, sig_train, 0.1, 0.2)
    np.testing.assert_array_equal(same, np.where(0.1 < radius, raw, NOT_CERTIFIED))
    # trimmed to half: the budget halves
    half = poison_count_after_memory(["trimmed"] * len(x), radius, radius / 2, budget, sx, sig_train, 0.1, 0.2)
    np.testing.assert_array_equal(half, np.where(0.1 < radius / 2,
                                                 certified_poison_count(budget / 2, sx, sig_train, 0.1, 0.2),
                                                 NOT_CERTIFIED))
    # relabelled: the L2 statement eps^2 + k eta^2 < R'^2
    rel = poison_count_after_memory(["relabelled"] * len(x), radius, radius, budget, sx, sig_train, 0.1, 0.2)
    bound = (radius ** 2 - 0.1 ** 2) / 0.2 ** 2
    safe = np.abs(bound - np.round(bound)) > 1e-9
    expect = np.where(bound > 0, np.minimum(np.ceil(bound) - 1, n), NOT_CERTIFIED)
    np.testing.assert_array_equal(rel[safe], expect[safe])
    with pytest.raises(ConfigError):
        covered_after_memory(["kept"], [1.0], [2.0], [1.0], [0.1], [0.1], [0.1])  # the memory never enlarges
