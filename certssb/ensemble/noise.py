"""Counter-based Gaussian noise: a pure function of (seed, purpose, member, sample index, element).

Nothing is stored or drawn from a stateful generator. Each element's value is computed by
hashing its coordinates with the splitmix64 finaliser (int64 torch ops; multiplications and
additions wrap modulo 2**64, logical right shifts are emulated with masks), turning the 64-bit
hash into two 24-bit uniforms in (0, 1) and applying Box-Muller. Any batch of (member, index)
pairs can therefore be generated on the fly, in any order, on any device, and gives the same
values across epochs, batches and resumed runs. The 64-bit words are integer arithmetic, exact on
every device (:func:`hash_words`); the float part is computed in float64 and then rounded to
float32, so CPU and CUDA agree to the last bit unless a float64 value lies within the few ulps by
which two devices' ``log``/``cos`` may differ of a float32 rounding midpoint (:func:`normal_from_words`).
"""

from __future__ import annotations

import math

import torch

from certssb.errors import ConfigError
from certssb.seeding import derive_seed


def _signed(c: int) -> int:
    """A 64-bit unsigned constant as the int64 with the same bits."""
    return c - (1 << 64) if c >= (1 << 63) else c


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_M1 = _signed(0xBF58476D1CE4E5B9)
_M2 = _signed(0x94D049BB133111EB)
_MASKS = {s: (1 << (64 - s)) - 1 for s in (30, 27, 31, 40, 16)}


def _shr(z: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 bits (torch's >> is arithmetic)."""
    return (z >> s) & _MASKS[s]


def _mix(z: torch.Tensor) -> torch.Tensor:
    """splitmix64 finaliser, a bijection on 64-bit words (``z`` is overwritten)."""
    z ^= _shr(z, 30)
    z *= _M1
    z ^= _shr(z, 27)
    z *= _M2
    z ^= _shr(z, 31)
    return z


def _as_index_tensor(v, name: str, device) -> torch.Tensor:
    if isinstance(v, int) and not isinstance(v, bool):
        # A fill on the device, not a host-to-device copy (which blocks on CUDA): the one-model
        # training and prediction paths pass the member as a Python int on every batch.
        return torch.full((), v, dtype=torch.int64, device=device)
    t = torch.as_tensor(v, device=device)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ConfigError(f"member_noise: {name} must be integers, got dtype {t.dtype}")
    return t.to(torch.int64)


def member_noise(seed: int, members, indices, shape, purpose: str, device=None,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise of shape ``broadcast(members, indices).shape + shape``.

    ``members`` and ``indices`` are ints or int64 tensors (broadcastable); element ``j`` (in
    row-major order of ``shape``) of the noise for member ``k`` and sample ``i`` depends only on
    ``(seed, purpose, k, i, j)``.
    """
    if isinstance(indices, torch.Tensor) and device is None:
        device = indices.device
    elif isinstance(members, torch.Tensor) and device is None:
        device = members.device
    device = torch.device(device) if device is not None else torch.device("cpu")
    shape = tuple(int(s) for s in ((shape,) if isinstance(shape, int) else shape))
    if any(s < 0 for s in shape):
        raise ConfigError(f"member_noise: shape must be non-negative, got {shape}")
    k = _as_index_tensor(members, "members", device)
    i = _as_index_tensor(indices, "indices", device)
    k, i = torch.broadcast_tensors(k, i)
    key = derive_seed(seed, "member_noise", purpose)  # 63 bits: fits int64
    h = hash_words(key, k, i, math.prod(shape))
    z = normal_from_words(h)
    return z.to(dtype).reshape(tuple(k.shape) + shape)


def hash_words(key: int, k: torch.Tensor, i: torch.Tensor, numel: int) -> torch.Tensor:
    """int64 ``[k.numel(), numel]``: the 64-bit word of every element (on ``k``'s device).

    Integer arithmetic only (int64 multiply, add, xor, shift and mask; multiplications and
    additions wrap modulo 2**64), which every device computes exactly: the words are the same on
    the CPU and on a GPU by construction (``tests/test_ensemble_noise.py`` checks them against
    exact Python integers)."""
    j = torch.arange(numel, dtype=torch.int64, device=k.device)
    # Per (member, index) stream key, then one hash per element.
    base = _mix(_mix(k * _GOLDEN + key) + i * _GOLDEN)
    return _mix(base.reshape(-1, 1) + (j + 1).mul_(_GOLDEN))


def normal_from_words(h: torch.Tensor) -> torch.Tensor:
    """float64 standard normals from 64-bit words (Box-Muller on two 24-bit uniforms in (0, 1)).

    The uniforms are exact in float64 (24-bit integers plus 1/2, times a power of two, and
    2 pi / 2**24 rounded once); ``log``, ``sqrt`` and ``cos`` are then within an ulp or two of
    float64 on any device, and the float32 the noise is used in rounds that away unless a value
    lies within a few float64 ulps of a float32 rounding midpoint (about 1 element in 10**8; the
    tests measure the margin)."""
    u1 = _shr(h, 40).to(torch.float64).add_(0.5).mul_(1.0 / (1 << 24))
    u2 = (_shr(h, 16) & 0xFFFFFF).to(torch.float64).add_(0.5).mul_(2.0 * math.pi / (1 << 24))
    del h
    return u1.log_().mul_(-2.0).sqrt_().mul_(u2.cos_())
