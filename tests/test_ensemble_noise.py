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


# --- device independence by construction -------------------------------------------------------
# The 64-bit words are integer arithmetic (int64 multiply/add wrapping modulo 2**64, xor, shifts
# with masks): the torch ops below are the ones a GPU runs too, and they are exact, so checking
# them against exact Python integers shows that every device computes the same words. The float
# part (Box-Muller in float64, then float32) is checked for its margin: two devices' log/cos may
# differ by an ulp or two of float64, which changes the float32 result only where the float64
# value lies that close to a float32 rounding midpoint.

_U64 = (1 << 64) - 1


def _mix_exact(z: int) -> int:
    """splitmix64's finaliser on unsigned Python integers (the specification)."""
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & _U64
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & _U64
    return z ^ (z >> 31)


def _signed(u: int) -> int:
    return u - (1 << 64) if u >= (1 << 63) else u


def _word_exact(key: int, k: int, i: int, j: int) -> int:
    g = 0x9E3779B97F4A7C15
    base = _mix_exact((_mix_exact((k * g + key) & _U64) + i * g) & _U64)
    return _signed(_mix_exact((base + (j + 1) * g) & _U64))


def test_hash_integer_arithmetic_is_exact():
    from certssb.ensemble.noise import _mix, hash_words
    gen = torch.Generator().manual_seed(0)
    edge = [0, 1, -1, 2 ** 63 - 1, -2 ** 63, 2 ** 62, -2 ** 40, 0x9E3779B97F4A7C15 - 2 ** 64]
    vals = edge + torch.randint(-2 ** 63, 2 ** 63 - 1, (2000,), generator=gen, dtype=torch.int64).tolist()
    got = _mix(torch.tensor(vals, dtype=torch.int64)).tolist()
    assert got == [_signed(_mix_exact(v & _U64)) for v in vals]
    key = 0x5DEECE66D12345
    k = torch.tensor([0, 3, 999, 2 ** 31], dtype=torch.int64)
    i = torch.tensor([0, 7, 49_999, 2 ** 40], dtype=torch.int64)
    words = hash_words(key, k, i, 12)
    expect = [[_word_exact(key, int(a), int(b), j) for j in range(12)] for a, b in zip(k, i)]
    assert words.tolist() == expect


def test_noise_float_part_has_a_margin_against_device_rounding():
    """Where two devices' float64 log/cos differ by a few ulps, the float32 noise is the same unless
    the float64 value lies within those ulps of a float32 rounding midpoint: measured here on 2**20
    values, none lies within 16 ulps (expected about 2**20 * 32 * 2**-29 = 0.06)."""
    from certssb.ensemble.noise import hash_words, normal_from_words
    z64 = normal_from_words(hash_words(12345, torch.arange(64), torch.arange(64), 2 ** 14)).flatten()
    z32 = z64.float().double()
    # distance to the float32 rounding midpoint on the far side, in float64 ulps
    ulp32 = torch.abs(torch.nextafter(z64.float(), torch.tensor(float("inf"))).double() - z32)
    midpoint_gap = (ulp32 / 2 - (z64 - z32).abs()).abs()
    ulp64 = torch.abs(torch.nextafter(z64, torch.tensor(float("inf"), dtype=torch.float64)) - z64)
    assert int((midpoint_gap < 16 * ulp64).sum()) == 0
    # Python's libm gives the same float32 values (another implementation of log, sqrt and cos)
    import math
    words = hash_words(12345, torch.arange(4), torch.arange(4), 256).flatten().tolist()
    for w, z in zip(words, z64.view(64, -1)[:4, :256].flatten().tolist()):
        u = w & _U64
        u1 = ((u >> 40) + 0.5) * (1.0 / (1 << 24))
        u2 = (((u >> 16) & 0xFFFFFF) + 0.5) * (2.0 * math.pi / (1 << 24))
        ref = math.sqrt(-2.0 * math.log(u1)) * math.cos(u2)
        assert torch.tensor(ref).float() == torch.tensor(z).float()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_and_cuda_noise_and_shuffles_bit_for_bit():
    from certssb.ensemble.noise import hash_words
    from certssb.ensemble.shuffle import hashed_orders
    ks, idx = torch.arange(16).view(-1, 1), torch.arange(1024).view(1, -1)
    a = member_noise(3, ks, idx, (3, 32, 32), "train")
    b = member_noise(3, ks.cuda(), idx.cuda(), (3, 32, 32), "train").cpu()
    assert torch.equal(hash_words(7, ks.flatten(), ks.flatten(), 999),
                       hash_words(7, ks.flatten().cuda(), ks.flatten().cuda(), 999).cpu())
    assert torch.equal(a, b), f"{int((a != b).sum())} of {a.numel()} elements differ"
    keys = torch.tensor([1, 2 ** 62, -5, 77])
    for epoch in (0, 1, 9):
        assert torch.equal(hashed_orders(keys, epoch, 50_000), hashed_orders(keys.cuda(), epoch, 50_000).cpu())
