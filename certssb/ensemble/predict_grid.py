"""Prediction at every sigma of a test-sigma grid (``sigma_optimiser=grid``) in one pass over members.

The grid is batched: the inputs are tiled ``|S|`` times with sigma ``s_j`` on tile ``j`` and the
SAME sample index on every tile, so member ``k`` sees ``x + s_j * u_k`` with one ``u_k`` per
(member, input) from the seeded per-member noise (:mod:`certssb.ensemble.noise`). Reusing
``u_k`` across the grid is sound for the union bound of :mod:`certssb.certifier.grid`, which needs
no independence between grid values. Each member is loaded once; the cost is ``|S|`` forward
passes per member and input. With several ensembles (``grid_ensembles``) each ensemble is
evaluated at its own test sigmas and the grid positions are stacked ensemble by ensemble.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from certssb.certifier.grid import GridVotes
from certssb.dataset.batched import BatchedImages, as_images
from certssb.ensemble.predict import MemberVotes, EvalInputs, predict_members
from certssb.errors import CertSSBError


class TiledImages(BatchedImages):
    """Images ``x`` repeated ``s`` times along the first axis (image ``j`` is ``x[j mod n]``),
    without a copy."""

    def __init__(self, x: BatchedImages, s: int) -> None:
        self.x, self.s = x, int(s)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.s * len(self.x),) + tuple(self.x.input_shape)

    @property
    def nbytes(self) -> int:
        return self.x.nbytes

    def _positions(self, index) -> torch.Tensor:
        index = index.cpu() if isinstance(index, torch.Tensor) else index
        return torch.arange(len(self), dtype=torch.int64)[index] % len(self.x)

    def batch(self, index, device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return self.x.batch(self._positions(index), device, dtype)

    def subset(self, index) -> BatchedImages:
        return self.x.subset(self._positions(index))

    def to(self, device) -> "TiledImages":
        return TiledImages(self.x.to(device), self.s)


@dataclass(frozen=True)
class GridSpec:
    """The grid of a grid design: the (training sigma, test sigma) pairs, ensemble by ensemble;
    one training sigma per ensemble (their stores in that order); how the test sigma is chosen
    (``union`` or ``separate`` with the first ``n_select`` members as selection members); and
    whether each position certifies with its own ensemble's training sigma (``grid_ensembles``)."""

    candidates: tuple
    train_sigmas: tuple
    selection: str = "union"
    n_select: int = 0
    per_ensemble: bool = False


def _predict_tiled(factory, store, inputs: EvalInputs, test_sigmas, ens, members, device, progress) -> MemberVotes:
    x = as_images(inputs.x)
    s, n = len(test_sigmas), len(x)
    sig = torch.tensor(test_sigmas, dtype=torch.float32).repeat_interleave(n)
    idx = torch.as_tensor(inputs.indices, dtype=torch.int64).repeat(s)
    v = predict_members(factory, store, EvalInputs(TiledImages(x, s), sig, idx, inputs.seed), ens, members,
                        device=device, progress=progress)
    return MemberVotes(prob_sum=v.prob_sum.reshape(s, n, -1), votes=v.votes.reshape(s, n, -1),
                       n_members=v.n_members)


def predict_grid(factory, stores, inputs: EvalInputs, spec: GridSpec, ens, n_members: int, device=None,
                 progress: bool = True) -> GridVotes:
    """Votes of the members at every grid position: members ``0..n-1``, or with ``selection=separate``
    the first ``n_select`` as selection members and the rest as estimating members.

    stores: one checkpoint store per training sigma of ``spec.train_sigmas`` (in that order);
    ``inputs``: the test inputs with their indices and noise seed (their sigmas are the grid's).
    With ``spec.per_ensemble`` (``grid_ensembles``) each position carries its ensemble's training
    sigma (``GridVotes.candidate_train``), which its certificate then uses.
    """
    stores = list(stores)
    if len(stores) != len(spec.train_sigmas):
        raise CertSSBError(f"{len(spec.train_sigmas)} training sigma(s) {list(spec.train_sigmas)} need as many member "
                           f"stores; got {len(stores)}")
    n_select = int(spec.n_select)
    est, sel, grid, cand = [], [], [], []
    for st, t in zip(stores, spec.train_sigmas):
        tests = tuple(s for tt, s in spec.candidates if tt == t)
        est.append(_predict_tiled(factory, st, inputs, tests, ens, range(n_select, n_members), device, progress))
        if n_select:
            sel.append(_predict_tiled(factory, st, inputs, tests, ens, range(n_select), device, progress))
        grid += tests
        cand += [t] * len(tests)

    def stack(parts, field):
        return np.concatenate([getattr(p, field) for p in parts], axis=0) if parts else None

    return GridVotes(test_sigmas=tuple(grid), sigma_train=float(min(spec.train_sigmas)), selection=spec.selection,
                     prob_sum=stack(est, "prob_sum"), votes=stack(est, "votes"), n_members=est[0].n_members,
                     select_prob_sum=stack(sel, "prob_sum"), select_votes=stack(sel, "votes"), n_select=n_select,
                     candidate_train=tuple(cand) if spec.per_ensemble else None)
