"""Joint-aware SGA (sigma_optimiser.objective=joint) and the training-sigma floor.

Toy (the band classifier of tests/test_sigma_toy.py, k = 3, offsets u in {0, 0.3, 0.5}): with
f_A(sigma) by 1-D quadrature the exact paper proxy r(sigma) = sigma * gap(sigma) / 2 has an
interior maximum at 0.55-0.60, and gap(sigma) decreases in sigma. The joint objective with floor
sigma_f = 0.3 is min(sigma, sigma_f) * gap(sigma) / 2: it increases like r below sigma_f and
decreases like sigma_f * gap(sigma) / 2 above it, so its exact maximiser is sigma_f itself
(computed below on a fine grid, not assumed). SGA must reach it within 10% (the tolerance of
tests/test_sigma_toy.py, where the last iterate fluctuates because the objective is flat near
its maximum) and never sit well above the floor, while the paper objective goes to ~0.58.
"""

import numpy as np
import pytest
import torch
from scipy.special import expit, ndtri
from scipy.stats import norm

from certssb.errors import ConfigError
from certssb.sigma_optimiser import optimise_sigmas

from conftest import sigma_settings
from test_sigma_toy import CLIP, OFFSETS, Band, _samples  # the same toy with a closed-form optimum

FLOOR = 0.3


def _exact_gap(sig, u, k):
    z = np.linspace(-9, 9, 4001)
    wz = norm.pdf(z)
    wz /= wz.sum()
    fa = (expit(k * (1 - np.abs(u + sig[:, None] * z[None]))) * wz).sum(1)
    hi, lo = np.maximum(fa, 1 - fa), np.minimum(fa, 1 - fa)
    return ndtri(np.clip(hi, *CLIP)) - ndtri(np.clip(lo, *CLIP))


def _cfg(name="sga", **kw):
    base = dict(sigma_0=0.15, n_draws=32, lr=0.02, iterations=300, clip_low=CLIP[0], clip_high=CLIP[1],
                sigma_min=0.05, sigma_max=1.2, batch_size=64)
    base.update(kw)
    return sigma_settings(name, **base)


def test_joint_optimum_is_the_floor_and_the_paper_optimum_is_not():
    grid = np.linspace(0.05, 1.2, 461)
    paper_best, joint_best = [], []
    for u in OFFSETS:
        gap = _exact_gap(grid, u, 3.0)
        paper_best.append(grid[np.argmax(grid * gap)])
        joint_best.append(grid[np.argmax(np.minimum(grid, FLOOR) * gap)])
    paper_best, joint_best = np.array(paper_best), np.array(joint_best)
    assert np.all(paper_best > 1.5 * FLOOR)
    assert np.allclose(joint_best, FLOOR, atol=grid[1] - grid[0])
    model = Band(3.0)
    for seed, sigma_0 in [(0, 0.15), (1, 0.6)]:
        joint = optimise_sigmas(_cfg(objective="joint", sigma_train_floor=FLOOR, sigma_0=sigma_0), model, _samples(),
                                seed, "toy", progress=False).numpy()
        paper = optimise_sigmas(_cfg(sigma_0=sigma_0), model, _samples(), seed, "toy", progress=False).numpy()
        assert np.all(np.abs(joint / joint_best - 1) < 0.10), (sigma_0, joint)
        assert np.all(joint <= FLOOR * 1.10), joint
        assert np.all(np.abs(paper / paper_best - 1) < 0.10), (sigma_0, paper)
        assert np.all(paper > 1.4 * FLOOR), paper


def test_paper_objective_is_unchanged_by_default():
    model = Band(3.0)
    a = optimise_sigmas(_cfg(iterations=20), model, _samples(), 0, "toy", progress=False)
    b = optimise_sigmas(_cfg(iterations=20, objective="paper", sigma_train_floor=None), model, _samples(), 0, "toy",
                        progress=False)
    assert torch.equal(a, b)  # same code path, same draws


def test_floor_holds_and_the_certificate_uses_it():
    raw = torch.tensor([0.05, 0.2, 0.31, 0.9])
    floored = _cfg(sigma_train_floor=FLOOR)
    train = floored.training_sigmas(raw)
    assert torch.allclose(train, torch.tensor([0.3, 0.3, 0.31, 0.9]))
    assert torch.all(floored.certificate_train_sigmas(train) == FLOOR)
    with pytest.raises(ValueError):
        floored.certificate_train_sigmas(raw)  # unclamped sigmas below the floor are refused
    plain = _cfg()
    assert torch.equal(plain.training_sigmas(raw), raw)
    assert torch.equal(plain.certificate_train_sigmas(raw), raw)  # data-dependent: the SGA sigmas
    assert not plain.data_independent() and floored.data_independent()
    grid = sigma_settings("grid", sigma_train=0.25, test_sigmas=[0.12, 0.25])
    design = grid.sigmas(None, None, _Sizes(4), torch.zeros(2, 1), "cpu", None, {}, False)
    assert torch.all(design.certificate_train_sigmas == 0.25) and grid.data_independent()
    fixed = sigma_settings("fixed", sigma_0=0.5)
    assert torch.all(fixed.sigmas(None, None, _Sizes(4), torch.zeros(2, 1), "cpu", None, {},
                                  False).certificate_train_sigmas == 0.5)
    assert [c.method_name() for c in (plain, floored, _cfg(objective="joint", sigma_train_floor=0.3), grid, fixed)] \
        == ["cert-ssb", "cert-ssb-floor", "cert-ssb-joint", "cert-ssb-grid", "rab"]


class _Sizes:
    """Stands in for the poisoned data where an option reads only the training set's length."""

    def __init__(self, n: int) -> None:
        self.x_train = torch.zeros(n, 1)


@pytest.mark.parametrize("overrides, message", [
    (dict(objective="joint"), "sigma_train_floor must be set with objective=joint"),
    (dict(objective="sound"), "objective must be one of paper, joint"),
    (dict(sigma_train_floor=-0.1), r"sigma_train_floor must be in \(0.0, 1.2\]"),
    (dict(sigma_train_floor=2.0), r"sigma_train_floor must be in \(0.0, 1.2\]"),
    (dict(name="released", objective="joint", sigma_train_floor=0.3), "objective must be paper for the released"),
])
def test_bad_joint_settings(overrides, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(**overrides)


@pytest.mark.parametrize("overrides, message", [
    (dict(test_sigmas=[0.1, 0.3]), "test_sigmas must all be <= sigma_train"),
    (dict(test_sigmas=[]), "at least one"),
    (dict(test_sigmas=[0.1, 0.1]), "must not repeat"),
    (dict(test_sigmas=[0.0]), "finite numbers > 0"),
    (dict(sigma_train=None), "sigma_train has the wrong type"),
    (dict(selection="best"), "selection must be one of union, separate"),
    (dict(selection="separate", selection_members=0), "selection_members must be >= 1"),
])
def test_bad_grid_settings(overrides, message):
    base = dict(sigma_train=0.25, test_sigmas=[0.12, 0.25], selection="union", selection_members=0)
    base.update(overrides)
    with pytest.raises(ConfigError, match=message):
        sigma_settings("grid", **base)
