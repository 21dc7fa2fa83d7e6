"""Grid selection of the test sigma, paid for in the bounds (docs/METHOD.md section 7, design 1).

Members are trained once at a data-independent ``sigma_train``. Each test input is evaluated at
every ``s`` of a finite grid ``S`` (all ``s <= sigma_train``) and certified with the ``s`` that
maximises the sound radius ``min(s, sigma_train) * G_s / 2``. Choosing ``s`` after looking at the
votes must be paid for:

- ``union``: the same members choose and estimate. The bounds are run at ``alpha / |S|`` (on top
  of the class-selection correction of :mod:`.scores`), so with probability ``>= 1 - alpha`` the
  bounds of EVERY ``s`` and every class hold together, hence also those of the chosen ``s``. The
  members reuse the same test noise ``u_k`` across the grid (``x + s * u_k``): the union bound
  needs no independence between the grid values, so this is sound.
- ``separate``: the first ``n_select`` members ("selection members") choose ``s``; the remaining
  members estimate the bounds at ``s`` with the plain ``alpha``. Members are i.i.d. (each has its
  own training and test noise), so the estimating votes are independent of the choice (Cohen et
  al.'s ``n0`` idea) and no ``|S|`` factor is needed, at the price of fewer estimating members.

Several training sigmas (``grid_ensembles``): one ensemble per data-independent ``sigma_T``, each
evaluated at its test sigmas; the grid is then the set of (``sigma_T``, ``s``) pairs, the radius of
a pair ``min(s, sigma_T) * G / 2``, and the union bound runs over all pairs. The ensembles are
different smoothed classifiers; the union bound needs no independence between them either.

What "best" means (``certifier.grid_select``): ``radius``, the largest sound L2 radius; or
``poison_count``, the most poisoned training samples of size ``eta`` certified together with a
test trigger of size ``eps`` (:func:`certssb.certifier.ellipsoid.certified_poison_count` at the
position's test and training sigma), ties broken by the radius. Any rule that looks only at the
bounds is covered by the union bound, and with ``separate`` it looks only at the selection
members' bounds.

Pure numpy/scipy, like the rest of the certifier.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from certssb.errors import ConfigError

from .ellipsoid import certified_poison_count
from .scores import BoundOptions, ScoreBounds, certify_scores

__all__ = ["GridSelection", "GridVotes", "certify_grid", "GRID_SELECTS", "SELECTIONS"]

SELECTIONS = ("union", "separate")
GRID_SELECTS = ("radius", "poison_count")


@dataclass
class GridVotes:
    """Aggregated member outputs of every input at every grid sigma.

    ``prob_sum`` / ``votes``: [|S|, m, C] of the estimating members (``n_members`` of them);
    ``select_prob_sum`` / ``select_votes``: the same of the ``n_select`` selection members
    (``selection == "separate"`` only, else None). ``candidate_train``: the training sigma of each
    grid position when the positions come from several ensembles (else ``sigma_train`` for all).
    """

    test_sigmas: tuple
    sigma_train: float
    selection: str
    prob_sum: np.ndarray
    votes: np.ndarray
    n_members: int
    select_prob_sum: np.ndarray | None = None
    select_votes: np.ndarray | None = None
    n_select: int = 0
    candidate_train: tuple | None = None

    def train_sigmas(self):
        """The training sigma of every grid position."""
        return self.candidate_train if self.candidate_train is not None else (self.sigma_train,) * len(self.test_sigmas)

    def subset(self, positions) -> "GridVotes":
        """The votes of the inputs at ``positions`` (a sub-test-set)."""
        pick = (lambda a: None if a is None else a[:, positions])
        return GridVotes(self.test_sigmas, self.sigma_train, self.selection, pick(self.prob_sum), pick(self.votes),
                         self.n_members, pick(self.select_prob_sum), pick(self.select_votes), self.n_select,
                         self.candidate_train)


@dataclass
class GridSelection:
    """Bounds at the chosen sigma of every input, and what the choice cost."""

    bounds: ScoreBounds  # at the chosen s (alpha_per_bound: the alpha each bound actually used)
    sigma: np.ndarray  # float64 [m]: the chosen test sigma
    choice: np.ndarray  # int64 [m]: its position in test_sigmas
    radius: np.ndarray  # float64 [m]: min(s, sigma_train) * G_s / 2 at the chosen s
    selection: str
    grid_size: int
    train_sigma: np.ndarray | None = None  # float64 [m]: the training sigma of the chosen position


def _take(all_bounds: list[ScoreBounds], choice: np.ndarray) -> ScoreBounds:
    rows = np.arange(len(choice))
    out = {}
    for f in fields(ScoreBounds):
        values = [getattr(b, f.name) for b in all_bounds]
        if isinstance(values[0], np.ndarray):
            out[f.name] = np.stack(values)[choice, rows]
        else:
            out[f.name] = values[0]
    return ScoreBounds(**out)


def _best(radius: np.ndarray, p_a_lower: np.ndarray) -> np.ndarray:
    """Per input the grid position of the largest radius; where every radius is 0 (abstain at every
    s), the largest pA lower bound (the prediction then comes from the most confident s)."""
    best = np.argmax(radius, axis=0)
    none = radius.max(axis=0) <= 0.0
    return np.where(none, np.argmax(p_a_lower, axis=0), best).astype(np.int64)


def _choose(bounds: list[ScoreBounds], sig: np.ndarray, scale: np.ndarray, train: np.ndarray, select: str,
            poison) -> np.ndarray:
    """The grid position per input under ``select`` (see the module docstring)."""
    radius = np.stack([scale[j] * b.gap / 2.0 for j, b in enumerate(bounds)])
    p_a = np.stack([b.p_a_lower for b in bounds])
    if select == "radius":
        return _best(radius, p_a)
    eps, eta, n_train = poison
    counts = np.stack([certified_poison_count(b.gap / 2.0, sig[j], np.full(int(n_train), train[j]), eps, eta)
                       for j, b in enumerate(bounds)])
    # the most poisoned samples, then the largest radius among the positions that certify that many
    ranked = np.where(counts == counts.max(axis=0), radius, -np.inf)
    return _best(np.where(np.isfinite(ranked), ranked, -1.0), p_a)


def _train_per_position(grid: GridVotes, sig: np.ndarray) -> np.ndarray:
    st = np.asarray(grid.train_sigmas(), dtype=np.float64).reshape(-1)
    if st.shape != sig.shape or np.any(~np.isfinite(st)) or np.any(st <= 0):
        raise ConfigError(f"sigma_train must be one number > 0 or one per test sigma ({sig.size}), got {st.tolist()}")
    if np.any(sig > st):
        raise ConfigError(f"test_sigmas must all be <= sigma_train (per position {st.tolist()}), got {sig.tolist()}")
    return st


def _check_grid(grid: GridVotes, options: BoundOptions, select: str, poison) -> np.ndarray:
    """The grid's test sigmas, after the one-line checks of its shape and of the choice rule."""
    sig = np.asarray(grid.test_sigmas, dtype=np.float64).reshape(-1)
    if sig.size == 0 or np.any(~np.isfinite(sig)) or np.any(sig <= 0):
        raise ConfigError("test_sigmas must be a non-empty list of numbers > 0")
    if grid.selection not in SELECTIONS:
        raise ConfigError(f"selection must be one of {', '.join(SELECTIONS)}, got {grid.selection!r}")
    if select not in GRID_SELECTS:
        raise ConfigError(f"grid_select must be one of {', '.join(GRID_SELECTS)}, got {select!r}")
    if select == "poison_count" and (poison is None or len(poison) != 3):
        raise ConfigError("grid_select=poison_count needs the poisoned-sample sizes (eps, eta, n_train)")
    src = np.asarray(grid.prob_sum if options.mode == "soft" else grid.votes)
    if src.ndim != 3 or src.shape[0] != sig.size:
        raise ConfigError(f"grid scores must have shape [|S|={sig.size}, m, C], got {src.shape}")
    if grid.selection == "separate" and (int(grid.n_select) < 1 or (grid.select_prob_sum is None
                                                                   and grid.select_votes is None)):
        raise ConfigError("selection=separate needs the selection members' scores (selection_members >= 1)")
    return sig


def certify_grid(grid: GridVotes, options: BoundOptions, select: str = "radius", poison=None,
                 grid_correction: bool = True) -> GridSelection:
    """Choose a test sigma per input and bound its scores soundly.

    ``grid``: the members' scores at every grid position (:class:`GridVotes`: ``union`` selection,
    or ``separate`` with the selection members' scores); ``options``: how each bound is computed
    (:class:`certssb.certifier.scores.BoundOptions`). ``select``: ``radius`` or ``poison_count``
    (then ``poison = (eps, eta, n_train)``: trigger size, per-sample size and training-set size of
    the certified poisoned-sample count). ``grid_correction``: False runs the ``union`` bounds at
    ``alpha`` instead of ``alpha / |S|``: UNSOUND, for the coverage test and as a labelled
    diagnostic only.
    """
    sig = _check_grid(grid, options, select, poison)
    st = _train_per_position(grid, sig)
    scale = np.minimum(sig, st)

    def bounds_at(ps, vs, n_m, a):
        return [certify_scores(None if ps is None else ps[j], None if vs is None else vs[j], n_m, alpha=a,
                               mode=options.mode, pb_mode=options.pb_mode,
                               selection_correction=options.selection_correction) for j in range(sig.size)]

    alpha = options.alpha
    if grid.selection == "union":
        est = bounds_at(grid.prob_sum, grid.votes, grid.n_members, alpha / sig.size if grid_correction else alpha)
        choice = _choose(est, sig, scale, st, select, poison)
    else:
        sel = bounds_at(grid.select_prob_sum, grid.select_votes, grid.n_select, alpha)
        choice = _choose(sel, sig, scale, st, select, poison)
        est = bounds_at(grid.prob_sum, grid.votes, grid.n_members, alpha)
    chosen = _take(est, choice)
    return GridSelection(bounds=chosen, sigma=sig[choice], choice=choice, radius=scale[choice] * chosen.gap / 2.0,
                         selection=grid.selection, grid_size=int(sig.size), train_sigma=st[choice])
