"""The proxy radius r(sigma) of Cert-SSB step 1 (docs/METHOD.md section 3).

    r(sigma) = sigma / 2 * (Phi^-1(clip(f_A)) - Phi^-1(clip(f_B)))
    f        = mean over m draws e_j ~ N(0, I) of softmax(h(x + sigma * e_j))

Everything here is differentiable w.r.t. ``sigma`` (reparameterisation ``x + sigma * e``).
The top-two classes A, B are chosen from the current ``f`` without gradient through the choice;
the gradient flows through the chosen entries. ``clip`` is ``torch.clamp``, so the gradient
through ``f_A`` vanishes once ``f_A`` is clipped (r then grows linearly in sigma: intended).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

DEFAULT_CLIP = (0.02, 0.98)


def _as_sigma(sigma, b: int, like: Tensor) -> Tensor:
    if not torch.is_tensor(sigma):
        sigma = torch.tensor(float(sigma), dtype=like.dtype, device=like.device)
    if sigma.dim() == 0:
        sigma = sigma.expand(b)
    if sigma.shape != (b,):
        raise ValueError(f"sigma must be a scalar or have shape [{b}], got {tuple(sigma.shape)}")
    return sigma.to(device=like.device, dtype=like.dtype)


def smoothed_probs(model: nn.Module, x: Tensor, sigma, eps: Tensor) -> Tensor:
    """Monte-Carlo smoothed probabilities ``f`` [b, K].

    x: [b, *shape]; sigma: scalar or [b]; eps: [b, m, *shape] standard-normal draws.
    All ``b * m`` noisy inputs go through ``model`` in one forward pass.
    """
    b = x.shape[0]
    if eps.shape[0] != b or tuple(eps.shape[2:]) != tuple(x.shape[1:]):
        raise ValueError(f"eps must have shape [{b}, m, {', '.join(map(str, x.shape[1:]))}], got {tuple(eps.shape)}")
    m = eps.shape[1]
    s = _as_sigma(sigma, b, x).view((b, 1) + (1,) * (x.dim() - 1))
    noisy = (x.unsqueeze(1) + s * eps).reshape((b * m,) + tuple(x.shape[1:]))
    logits = model(noisy)
    if logits.dim() != 2 or logits.shape[1] < 2:
        raise ValueError(f"model must return logits [n, K] with K >= 2, got {tuple(logits.shape)}")
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    probs = torch.softmax(logits, dim=1)
    return probs.view(b, m, -1).mean(dim=1)


def radius_from_probs(f: Tensor, sigma, clip: tuple[float, float] = DEFAULT_CLIP, cap: float | None = None) -> Tensor:
    """``sigma / 2 * (Phi^-1(clip(f_A)) - Phi^-1(clip(f_B)))`` per row of ``f`` [b, K].

    ``cap`` (the joint objective): ``min(sigma, cap)`` replaces the leading ``sigma``, giving the
    sound joint radius with training-side sigma ``cap``; above ``cap`` the gradient is then
    ``cap / 2 * d gap / d sigma``, so more test noise only pays through the margin.
    """
    low, high = float(clip[0]), float(clip[1])
    top2 = f.detach().topk(2, dim=1).indices
    f_a = f.gather(1, top2[:, :1]).squeeze(1)
    f_b = f.gather(1, top2[:, 1:2]).squeeze(1)
    gap = torch.special.ndtri(f_a.clamp(low, high)) - torch.special.ndtri(f_b.clamp(low, high))
    scale = _as_sigma(sigma, f.shape[0], f)
    if cap is not None:
        scale = torch.clamp(scale, max=float(cap))
    return scale / 2 * gap


def proxy_radius(
    model: nn.Module, x: Tensor, sigma, eps: Tensor, clip: tuple[float, float] = DEFAULT_CLIP,
    cap: float | None = None,
) -> Tensor:
    """Proxy radius r(sigma) [b] of each sample in ``x`` (differentiable w.r.t. ``sigma``).

    x: [b, *shape]; sigma: scalar or [b] (may require grad); eps: [b, m, *shape] draws of
    N(0, I) (pass the same ``eps`` at several sigmas for common random numbers);
    clip: (clip_low, clip_high); cap: see :func:`radius_from_probs` (None: the paper's radius).
    """
    f = smoothed_probs(model, x, sigma, eps)
    return radius_from_probs(f, sigma, clip, cap)
