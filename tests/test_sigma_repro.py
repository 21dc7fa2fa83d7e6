"""Reproducibility: a sample's sigma depends on (seed, purpose, its index), not on its batch."""

import math

import pytest
import torch
from torch import nn

from conftest import sigma_settings
from certssb.sigma_optimiser import optimise_sigmas



def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 3))


def _cfg(**over):
    d = dict(name="sga", sigma_0=0.3, n_draws=8, lr=0.04, iterations=15, sigma_min=0.05, sigma_max=1.0,
             batch_size=4)
    d.update(over)
    return sigma_settings(d.pop("name"), **d)


X = torch.rand(10, 1, 4, 4, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", ["sga", "released"])
def test_same_seed_identical(name):
    model = _model()
    a = optimise_sigmas(_cfg(name=name), model, X, 7, "train", progress=False)
    b = optimise_sigmas(_cfg(name=name), model, X, 7, "train", progress=False)
    assert torch.equal(a, b)
    c = optimise_sigmas(_cfg(name=name), model, X, 8, "train", progress=False)
    d = optimise_sigmas(_cfg(name=name), model, X, 7, "test-clean", progress=False)
    assert not torch.equal(a, c) and not torch.equal(a, d)


def test_independent_of_batch_composition():
    model = _model()
    full = optimise_sigmas(_cfg(batch_size=4), model, X, 0, "train", progress=False)
    # other batch sizes
    for bs in (1, 3, 10):
        other = optimise_sigmas(_cfg(batch_size=bs), model, X, 0, "train", progress=False)
        torch.testing.assert_close(other, full, rtol=1e-5, atol=1e-6)
    # a subset, in another order, keyed by the samples' global indices
    idx = torch.tensor([7, 2, 9, 0])
    sub = optimise_sigmas(_cfg(batch_size=4), model, X[idx], 0, "train", progress=False, indices=idx)
    torch.testing.assert_close(sub, full[idx], rtol=1e-5, atol=1e-6)
    # together with unrelated samples
    extra = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    mixed = optimise_sigmas(_cfg(batch_size=4), model, torch.cat([extra, X]), 0, "train", progress=False,
                            indices=torch.cat([torch.arange(100, 105), torch.arange(10)]))
    torch.testing.assert_close(mixed[5:], full, rtol=1e-5, atol=1e-6)


def test_indices_shape_checked():
    with pytest.raises(ValueError):
        optimise_sigmas(_cfg(), _model(), X, 0, "train", progress=False, indices=torch.arange(3))


def test_draws_are_batched_chunked_and_per_sample():
    """The batch draw equals per-sample draws, whatever the chunking (memory bound only)."""
    from certssb.sigma_optimiser.optimise import _draw
    idx = torch.tensor([5, 0, 9])
    full = _draw(1, "train", idx, 2, 4, (1, 3, 3))
    assert full.shape == (3, 4, 1, 3, 3)
    for chunk in (1, 36, 37, 1000):
        assert torch.equal(_draw(1, "train", idx, 2, 4, (1, 3, 3), chunk_elems=chunk), full)
    assert torch.equal(_draw(1, "train", idx[1:2], 2, 4, (1, 3, 3))[0], full[1])
    assert not torch.equal(_draw(1, "train", idx, 3, 4, (1, 3, 3)), full)  # another iteration
    assert not torch.equal(_draw(1, "test-clean", idx, 2, 4, (1, 3, 3)), full)  # another purpose


def test_same_device_treats_bare_cuda_as_current():
    from certssb.sigma_optimiser.optimise import same_device
    assert same_device(torch.device("cpu"), torch.device("cpu"))
    assert not same_device(torch.device("cpu"), torch.device("cuda:0"))
    if torch.cuda.is_available():
        assert same_device(torch.device("cuda"), torch.device(f"cuda:{torch.cuda.current_device()}"))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sga_on_cuda_close_to_cpu_and_no_copy():
    """Same draws on both devices; sigmas agree up to the forward pass's rounding."""
    model = _model()
    cpu = optimise_sigmas(_cfg(), model, X, 0, "train", progress=False)
    net = _model().cuda()
    gpu = optimise_sigmas(_cfg(), net, X, 0, "train", progress=False, device="cuda")
    torch.testing.assert_close(gpu, cpu, rtol=1e-3, atol=1e-4)
    assert next(net.parameters()).device.type == "cuda"
