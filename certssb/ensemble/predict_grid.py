"""Prediction at every sigma of a test-sigma grid (``sigma_optimiser=grid``) in one pass over members.

The grid is batched: the inputs are tiled ``|S|`` times with sigma ``s_j`` on tile ``j`` and the
SAME sample index on every tile, so member ``k`` sees ``x + s_j * u_k`` with one ``u_k`` per
(member, input) from the seeded per-member noise (:mod:`certssb.ensemble.noise`). Reusing
``u_k`` across the grid is sound for the union bound of :mod:`certssb.certifier.grid`, which needs
no independence between grid values. Each member is loaded once; the cost is ``|S|`` forward
passes per member and input.
"""

from __future__ import annotations

import torch

from certssb.certifier.grid import GridVotes
from certssb.ensemble.predict import MemberVotes, predict_members


def _predict_tiled(factory, store, x, test_sigmas, indices, cfg, seed, members, device, progress) -> MemberVotes:
    s, n = len(test_sigmas), x.shape[0]
    xt = x.unsqueeze(0).expand(s, *x.shape).reshape(s * n, *x.shape[1:])
    sig = torch.tensor(test_sigmas, dtype=torch.float32).repeat_interleave(n)
    idx = torch.as_tensor(indices, dtype=torch.int64).repeat(s)
    v = predict_members(factory, store, xt, sig, idx, cfg, seed, members, device=device, progress=progress)
    return MemberVotes(prob_sum=v.prob_sum.reshape(s, n, -1), votes=v.votes.reshape(s, n, -1),
                       n_members=v.n_members)


def predict_grid(factory, store, x: torch.Tensor, indices, sig_settings, cfg, seed: int, n_members: int,
                 device=None, progress: bool = True) -> GridVotes:
    """Votes of the members at every grid sigma: members ``0..n-1``, or with ``selection=separate``
    the first ``selection_members`` as selection members and the rest as estimating members.

    sig_settings: the parsed ``sigma_optimiser`` settings (``test_sigmas``, ``sigma_train``,
    ``selection``, ``selection_members``); cfg: the ensemble config.
    """
    grid = tuple(float(s) for s in sig_settings.test_sigmas)
    n_sel = int(sig_settings.selection_members) if sig_settings.selection == "separate" else 0
    est = _predict_tiled(factory, store, x, grid, indices, cfg, seed, range(n_sel, n_members), device, progress)
    sel = _predict_tiled(factory, store, x, grid, indices, cfg, seed, range(n_sel), device, progress) if n_sel else None
    return GridVotes(test_sigmas=grid, sigma_train=float(sig_settings.sigma_train), selection=sig_settings.selection,
                     prob_sum=est.prob_sum, votes=est.votes, n_members=est.n_members,
                     select_prob_sum=None if sel is None else sel.prob_sum,
                     select_votes=None if sel is None else sel.votes, n_select=n_sel)
