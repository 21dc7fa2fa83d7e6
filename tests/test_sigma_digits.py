"""SGA on real data: a small noise-trained MLP surrogate on sklearn's 8x8 digits.

Measured (seed 0, 100 test samples, sigma_0 0.25, m 32, lr 0.04, 100 steps): the proxy radius
evaluated with 2000 fresh common draws is higher at the optimised sigma than at sigma_0 for
97% of the samples (mean 0.32 -> 0.41; surrogate accuracy 0.87); the 3 others have
r(sigma_0) < 0.14 (near-ties between two classes, where r is small and its gradient noisy). Asserted: >= 85% and mean gain >= 15%.
"""


import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from certssb.seeding import make_generator
from conftest import sigma_settings
from certssb.sigma_optimiser import optimise_sigmas, proxy_radius, sigma_stats, sigma_trajectory

SIGMA_0 = 0.25



@pytest.fixture(scope="module")
def surrogate():
    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
    y = torch.tensor(d.target, dtype=torch.int64)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    gen = make_generator(0, "test-surrogate")
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    xtr, ytr = x[:1500], y[:1500]
    for _ in range(15):
        perm = torch.randperm(1500, generator=gen)
        for i in range(0, 1500, 100):
            b = perm[i : i + 100]
            noisy = xtr[b] + SIGMA_0 * torch.randn(xtr[b].shape, generator=gen)
            loss = nn.functional.cross_entropy(net(noisy), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.set_num_threads(before)
    net.zero_grad(set_to_none=True)
    net.eval()
    return net, x[1500:1600], y[1500:1600]


def test_sga_increases_proxy_radius_on_digits(surrogate):
    net, x, y = surrogate
    with torch.no_grad():
        assert (net(x).argmax(1) == y).float().mean() > 0.8
    state = {k: v.clone() for k, v in net.state_dict().items()}
    cfg = sigma_settings("sga", sigma_0=SIGMA_0, n_draws=32, lr=0.04, iterations=100, clip_low=0.02, clip_high=0.98,
                         sigma_min=0.05, sigma_max=1.0, batch_size=50)
    sig = optimise_sigmas(cfg, net, x, 0, "test-clean", progress=False)
    assert sig.dtype == torch.float32 and sig.shape == (100,) and sig.device.type == "cpu"
    assert torch.isfinite(sig).all() and (sig > 0).all()
    assert (sig >= 0.05).all() and (sig <= 1.0).all()
    for k, v in net.state_dict().items():  # frozen
        assert torch.equal(v, state[k]), k
    assert all(p.grad is None for p in net.parameters())

    eps = torch.randn((100, 2000, 1, 8, 8), generator=make_generator(1, "eval"))
    with torch.no_grad():
        r0 = proxy_radius(net, x, SIGMA_0, eps)
        r1 = proxy_radius(net, x, sig, eps)
    frac = (r1 > r0).float().mean().item()
    assert frac >= 0.85, frac
    assert r1.mean() >= 1.15 * r0.mean(), (r0.mean(), r1.mean())
    st = sigma_stats(sig, 0.05, 1.0)
    assert st["median"] > SIGMA_0  # a confident surrogate can afford more noise than sigma_0


def test_released_and_fixed_on_digits(surrogate):
    net, x, _ = surrogate
    cfg = sigma_settings("released", sigma_0=SIGMA_0, n_draws=8, lr=0.04, iterations=20, sigma_min=0.05,
                         sigma_max=1.0, batch_size=64)
    sig, traj = sigma_trajectory(cfg, net, x[:30], 0, "test-clean")
    assert (traj.diff(dim=0) >= 0).all() and (sig > SIGMA_0).all()
    with pytest.raises(TypeError):  # fixed has no SGA: its sigmas are its own (sigma_0 everywhere)
        optimise_sigmas(sigma_settings("fixed", sigma_0=SIGMA_0), net, x, 0, "x", progress=False)
