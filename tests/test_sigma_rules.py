"""The `fixed` and `released` rules, and that the model is used frozen."""

import math

import pytest
import torch
from torch import nn

from certssb.ensemble.noise import member_noise
from conftest import sigma_settings
from certssb.sigma_optimiser import optimise_sigmas, sigma_trajectory, smoothed_probs

DIM = 4



class Band(nn.Module):
    """Binary: class A on |w.x| < 1 (logit k * (1 - |w.x|)); r(sigma) peaks near sigma ~ 0.55."""

    def __init__(self, k=3.0):
        super().__init__()
        self.k = k
        self.lin = nn.Linear(DIM, 1)
        self.drop = nn.Dropout(0.5)  # must be inactive: optimise_sigmas uses eval mode
        with torch.no_grad():
            self.lin.weight.fill_(1 / math.sqrt(DIM))
            self.lin.bias.zero_()

    def forward(self, x):
        la = self.k * (1 - self.drop(self.lin(x.flatten(1))).abs())
        return torch.cat([la, torch.zeros_like(la)], 1)


def _x(n=5):
    u = torch.linspace(0, 0.5, n)
    return (u[:, None] / math.sqrt(DIM) * torch.ones(1, DIM)).view(n, 1, 1, DIM)


def _cfg(name, **over):
    d = dict(name=name, sigma_0=0.9, n_draws=16, lr=0.04, iterations=25, clip_low=0.02, clip_high=0.98,
             sigma_min=0.05, sigma_max=1.2, batch_size=3)
    d.update(over)
    return sigma_settings(d.pop("name"), **d)


def test_fixed_returns_sigma_0_without_model():
    class Sizes:
        x_train = torch.rand(7, 3, 4, 4)

    s = sigma_settings("fixed", sigma_0=0.12).sigmas(None, None, Sizes(), torch.rand(5, 3, 4, 4), "cpu", None, {},
                                                     False)
    assert s.train.dtype == torch.float32 and torch.equal(s.train, torch.full((7,), 0.12))
    assert torch.equal(s.test_clean, torch.full((5,), 0.12)) and torch.equal(s.certificate_train_sigmas, s.train)


def test_released_only_grows_and_ignores_model_gradient():
    """Above the optimum, SGA lowers sigma; the released rule still raises it every step."""
    model = Band()
    s_rel, traj = sigma_trajectory(_cfg("released"), model, _x(), 0, "train")
    steps = traj.diff(dim=0)
    assert traj.shape == (26, 5) and (steps >= 0).all() and (steps[0] > 0).all()
    assert (s_rel > 0.9).all()
    s_sga = optimise_sigmas(_cfg("sga"), model, _x(), 0, "train", progress=False)
    assert (s_sga < 0.9).all()


def test_released_rule_is_the_detached_update():
    """Reproduce the released trajectory by hand: sigma += lr * |Phi^-1(clip(p_A))| on the same
    per-sample draws (counter-based noise keyed by (seed, "sga/<purpose>", iteration, index);
    these replaced one torch generator per sample, so the draws, not the rule, changed), clamped
    to the box."""
    model = Band().eval()
    x = _x(4)
    cfg = _cfg("released", iterations=6, batch_size=3)
    _, traj = sigma_trajectory(cfg, model, x, 3, "test-clean")
    sigma = torch.full((4,), 0.9)
    for t in range(6):
        # one sample at a time: the batch draw must equal the per-sample draws
        eps = torch.stack([member_noise(3, t, i, (16, 1, 1, DIM), "sga/test-clean") for i in range(4)])
        with torch.no_grad():
            p_a = smoothed_probs(model, x, sigma, eps).max(1).values.clamp(0.02, 0.98)
        sigma = (sigma + 0.04 * torch.special.ndtri(p_a).abs()).clamp(0.05, 1.2)
        torch.testing.assert_close(traj[t + 1], sigma)


def test_released_constant_model_closed_form():
    class Const(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor([0.0, math.log(9.0)]))  # p = (0.1, 0.9)

        def forward(self, x):
            return self.w.expand(x.shape[0], -1)

    cfg = _cfg("released", sigma_0=0.1, iterations=5, sigma_max=10.0)
    s = optimise_sigmas(cfg, Const(), torch.zeros(3, 1, 2, 2), 0, "x", progress=False)
    expected = 0.1 + 5 * 0.04 * float(torch.special.ndtri(torch.tensor(0.9)))
    torch.testing.assert_close(s, torch.full((3,), expected))
    cfg = _cfg("released", sigma_0=0.1, iterations=500)  # capped at sigma_max
    assert torch.equal(optimise_sigmas(cfg, Const(), torch.zeros(2, 1, 2, 2), 0, "x", progress=False),
                       torch.full((2,), 1.2))


def test_model_frozen_and_restored():
    model = Band()
    model.train()
    model.lin.weight.requires_grad_(True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    s = optimise_sigmas(_cfg("sga"), model, _x(), 0, "train", progress=False)
    assert torch.isfinite(s).all() and (s > 0).all()
    assert model.training and model.lin.weight.requires_grad and model.lin.bias.requires_grad
    assert model.lin.weight.grad is None
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_box_and_edge_cases():
    model = Band(10.0)
    s, traj = sigma_trajectory(_cfg("sga", sigma_0=0.05, lr=5.0, iterations=10), model, _x(), 0, "t")
    assert (traj >= 0.05).all() and (traj <= 1.2).all()
    s0 = optimise_sigmas(_cfg("sga", iterations=0), model, _x(), 0, "t", progress=False)
    assert torch.equal(s0, torch.full((5,), 0.9))
    s_lr0 = optimise_sigmas(_cfg("sga", lr=0.0), model, _x(), 0, "t", progress=False)
    assert torch.equal(s_lr0, torch.full((5,), 0.9))
    empty = optimise_sigmas(_cfg("sga"), model, torch.zeros(0, 1, 1, DIM), 0, "t", progress=False)
    assert empty.shape == (0,)


def test_progress_bar_runs(caplog, monkeypatch):
    """``progress=True`` shows SGA's progress over its batches (5 samples in batches of 3: 2), as
    log lines off a terminal and as a tqdm bar on one; ``progress=False`` shows nothing; the
    sigmas are the same either way."""
    import io
    import logging
    import sys

    cfg = _cfg("sga", iterations=2)
    with caplog.at_level(logging.INFO, logger="certssb"):
        quiet = optimise_sigmas(cfg, Band(), _x(), 0, "t", progress=False)
        assert not [r for r in caplog.records if "sigma[" in r.getMessage()]
        shown = optimise_sigmas(cfg, Band(), _x(), 0, "t", progress=True)
    assert torch.equal(shown, quiet)
    lines = [r.getMessage() for r in caplog.records if "sigma[" in r.getMessage()]
    assert lines == ["sigma[sga] t: 1/2 batch", "sigma[sga] t: 2/2 batch"]

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert torch.equal(optimise_sigmas(cfg, Band(), _x(), 0, "t", progress=True), quiet)
    bar = term.getvalue()  # tqdm's line (redrawn with \r; cleared at the end: leave=False)
    assert bar.startswith("\rsigma[sga] t:") and " 0/2 [" in bar and "batch/s" in bar, repr(bar)
