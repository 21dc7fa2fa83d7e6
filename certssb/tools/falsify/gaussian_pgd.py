"""White-box L2 PGD on a retrained smoothed ensemble (the Gaussian check's ``--test-attack pgd``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from certssb.ensemble.predict import load_member
from certssb.ensemble.vectorised import stack_models
from certssb.seeding import make_generator

__all__ = ["PGDProblem", "pgd_attack"]


@dataclass
class PGDProblem:
    """What to attack: inputs ``x0`` (started at ``x_start``), each within ``||x - x0|| <= eps``,
    smoothed with ``sig_x``; the aim is ``target`` over the clean prediction ``pred``."""

    x0: torch.Tensor
    x_start: torch.Tensor
    eps: np.ndarray
    sig_x: torch.Tensor
    target: int
    pred: np.ndarray


def _smoothed_margin(model, members: int, problem: PGDProblem, draws: int, gen):
    """``x -> [b]``: the mean over the ``members`` stacked models (``model`` = (call, params,
    buffers)) and FRESH noise draws of p_target - p_pred."""
    call, params, buffers = model
    shape = tuple(problem.x0.shape[1:])
    b = problem.x0.shape[0]
    sig = problem.sig_x.view(1, -1, *([1] * len(shape)))
    pred_t = torch.as_tensor(problem.pred, dtype=torch.int64)

    def objective(x):
        xs = x.unsqueeze(0).expand(members * draws, *x.shape).reshape(members, draws * b, *shape)
        noise = torch.randn((members, draws * b) + shape, generator=gen)
        xs = xs + sig.repeat(1, draws, *([1] * len(shape))) * noise
        prob = torch.softmax(call(params, buffers, xs), dim=-1).reshape(members * draws, b, -1).mean(0)
        return prob[:, problem.target] - prob.gather(1, pred_t.view(-1, 1)).squeeze(1)

    return objective


def pgd_attack(factory, store, members: int, problem: PGDProblem, steps: int, draws: int, key: tuple) -> torch.Tensor:
    """L2 PGD on the smoothed ensemble of ``store``'s ``members``, started at ``problem.x_start``:
    maximise the mean (over members and FRESH noise draws, expectation over transformation) of
    p_target - p_pred, within ``||x - x0|| <= eps`` and [0, 1]. The noise is drawn from its own
    generator (``make_generator(*key)``), never the evaluation noise, so the attack targets the
    smoothed classifier and not the N particular draws that estimate it. Returns the best point."""
    params, buffers, _, call = stack_models([load_member(factory, store, k, "cpu") for k in range(members)])
    params = {k: v.detach() for k, v in params.items()}
    objective = _smoothed_margin((call, params, buffers), members, problem, draws, make_generator(*key))
    x0 = problem.x0
    eps_t = torch.as_tensor(problem.eps, dtype=torch.float32).view(-1, *([1] * (x0.dim() - 1)))
    step = 2.5 * eps_t / max(1, steps)

    def project(x):
        delta = x - x0
        n = delta.flatten(1).norm(dim=1).view_as(eps_t).clamp_min(1e-12)
        return (x0 + delta * torch.clamp(eps_t / n, max=1.0)).clamp(0.0, 1.0)

    best = problem.x_start.clone()
    with torch.no_grad():
        best_val = objective(best)
    x = best.clone()
    for _ in range(steps):
        x.requires_grad_(True)
        val = objective(x)
        (g,) = torch.autograd.grad(val.sum(), x)
        with torch.no_grad():
            better = val.detach() > best_val
            best[better], best_val[better] = x.detach()[better], val.detach()[better]
            gn = g.flatten(1).norm(dim=1).view_as(eps_t).clamp_min(1e-12)
            x = project(x.detach() + step * g / gn)
    with torch.no_grad():
        val = objective(x)
        better = val > best_val
        best[better] = x[better]
    return best.detach()
