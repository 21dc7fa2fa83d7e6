"""proxy_radius: closed form on a constant model, gradient vs finite differences."""

import math

import pytest
import torch
from torch import nn

from certssb.seeding import make_generator
from certssb.sigma_optimiser import proxy_radius, smoothed_probs


class Const(nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits))

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1)


class Band(nn.Module):
    """Class A on the band |w.x| < 1 (logit k * (1 - |w.x|)), class B otherwise."""

    def __init__(self, k, dim):
        super().__init__()
        self.k = k
        self.register_buffer("w", torch.full((dim,), 1 / math.sqrt(dim)))

    def forward(self, x):
        t = x.flatten(1) @ self.w
        la = self.k * (1 - t.abs())
        return torch.stack([la, torch.zeros_like(la)], 1)


def test_constant_model_closed_form():
    probs = torch.tensor([0.7, 0.2, 0.1])
    model = Const(probs.log().tolist())
    x = torch.zeros(2, 1, 2, 2)
    eps = torch.randn(2, 5, 1, 2, 2, generator=make_generator(0, "t"))
    sigma = torch.tensor([0.3, 0.6])
    r = proxy_radius(model, x, sigma, eps, (0.02, 0.98))
    gap = torch.special.ndtri(torch.tensor(0.7)) - torch.special.ndtri(torch.tensor(0.2))
    torch.testing.assert_close(r, sigma / 2 * gap)
    # clipping: p_A = 0.999 -> clipped to 0.98, p_B = 0.001 -> 0.02
    model = Const(torch.tensor([0.999, 0.001]).log().tolist())
    r = proxy_radius(model, x, 0.5, eps, (0.02, 0.98))
    expected = 0.5 / 2 * 2 * torch.special.ndtri(torch.tensor(0.98))
    torch.testing.assert_close(r, expected.expand(2))


def test_smoothed_probs_shape_and_sum():
    model = Band(3.0, 4)
    x = torch.zeros(3, 1, 1, 4)
    eps = torch.randn(3, 7, 1, 1, 4, generator=make_generator(0, "t"))
    f = smoothed_probs(model, x, torch.tensor([0.1, 0.5, 1.0]), eps)
    assert f.shape == (3, 2)
    torch.testing.assert_close(f.sum(1), torch.ones(3))
    with pytest.raises(ValueError):
        smoothed_probs(model, x, 0.5, eps[:, :, :, :, :2])


def test_gradient_matches_finite_difference():
    torch.manual_seed(0)
    model = Band(3.0, 4).double()
    x = torch.tensor([0.0, 0.3, 0.6]).double()[:, None].mul(torch.full((1, 4), 0.5, dtype=torch.float64)).view(3, 1, 1, 4)
    eps = torch.randn(3, 64, 1, 1, 4, generator=make_generator(0, "fd"), dtype=torch.float64)
    sigma = torch.tensor([0.3, 0.5, 0.7], dtype=torch.float64, requires_grad=True)
    r = proxy_radius(model, x, sigma, eps)
    (g,) = torch.autograd.grad(r.sum(), sigma)
    h = 1e-6
    with torch.no_grad():
        fd = (proxy_radius(model, x, sigma + h, eps) - proxy_radius(model, x, sigma - h, eps)) / (2 * h)
    torch.testing.assert_close(g, fd, rtol=1e-5, atol=1e-7)
