import numpy as np
import pytest
import torch
from scipy import stats

from certssb.ensemble.noise import member_noise


def test_shape_and_broadcast():
    z = member_noise(0, torch.arange(3).view(-1, 1), torch.arange(5).view(1, -1), (1, 4, 4), "train")
    assert z.shape == (3, 5, 1, 4, 4) and z.dtype == torch.float32
    assert member_noise(0, 2, torch.arange(7), 10, "test").shape == (7, 10)
    assert member_noise(0, 2, 5, (2, 3), "test").shape == (2, 3)


def test_pure_function_of_member_and_index():
    full = member_noise(7, torch.arange(4).view(-1, 1), torch.arange(50).view(1, -1), (1, 8, 8), "train")
    # any batch composition / order gives the same values
    idx = torch.tensor([31, 2, 2, 49, 0])
    part = member_noise(7, 3, idx, (1, 8, 8), "train")
    assert torch.equal(part, full[3, idx])
    pairs_k, pairs_i = torch.tensor([1, 0, 3, 1]), torch.tensor([5, 9, 5, 44])
    assert torch.equal(member_noise(7, pairs_k, pairs_i, (1, 8, 8), "train"), full[pairs_k, pairs_i])
    # repeated calls identical; float64 request agrees after rounding
    assert torch.equal(member_noise(7, 3, idx, (1, 8, 8), "train"), part)
    assert torch.equal(member_noise(7, 3, idx, (1, 8, 8), "train", dtype=torch.float64).float(), part)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_and_cuda_agree():
    a = member_noise(1, 2, torch.arange(100), (3, 8, 8), "test")
    b = member_noise(1, 2, torch.arange(100, device="cuda"), (3, 8, 8), "test").cpu()
    assert torch.allclose(a, b, atol=1e-6)


def test_distribution_standard_normal():
    z = member_noise(0, torch.arange(10).view(-1, 1), torch.arange(625).view(1, -1), (32,), "train").flatten()
    z = z.double().numpy()
    assert z.size == 200_000 and np.isfinite(z).all()
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert stats.kstest(z, "norm").pvalue > 1e-3


def _corr(a, b):
    return float(np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1])


def test_members_purposes_seeds_uncorrelated():
    idx = torch.arange(500)
    ref = member_noise(0, 0, idx, (64,), "train")
    others = [member_noise(0, 1, idx, (64,), "train"), member_noise(0, 0, idx, (64,), "test"),
              member_noise(1, 0, idx, (64,), "train"), member_noise(0, 0, idx + 1, (64,), "train")]
    for o in others:
        assert not torch.equal(o, ref)
        assert abs(_corr(o, ref)) < 0.02  # 32,000 pairs: sd of r is 0.0056
    # neighbouring elements within a sample are uncorrelated too
    assert abs(_corr(ref[:, :-1], ref[:, 1:])) < 0.02


def test_rejects_float_indices():
    from certssb.errors import ConfigError
    with pytest.raises(ConfigError):
        member_noise(0, 0, torch.tensor([0.5]), (2,), "train")
