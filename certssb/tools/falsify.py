"""Empirical falsification check of the certificates (docs/METHOD.md sections 1-3).

The certificate says: with the smoothing distribution held fixed (the same per-sample sigmas, the
same member seeds, the same training and test noise), the smoothed prediction on ``(D, x)`` equals
the one on ``(D + Delta, x + delta)`` for every joint perturbation of the FEATURES (labels fixed)
with ``sqrt(||delta||^2 + sum_i ||delta_i||^2) < R_joint(x)``. This module tries to break it:

1. digits, classes [0, 1]; per-sample sigmas (SGA through a surrogate trained with ``sigma_0``:
   Cert-SSB, with ``objective`` paper or joint and an optional training ``floor``; one fixed sigma:
   RAB; ``grid``: members trained at ``sigma_0`` and each input's test sigma chosen from
   ``test_sigmas`` with the union bound; or ``grid_ensembles``: one ensemble per value of
   ``sigma_trains`` and each input's (training sigma, test sigma) pair chosen with the union bound)
   computed ONCE on the clean data and then held fixed; N members (per ensemble) trained on the
   clean set; test inputs certified (hard votes, Clopper-Pearson) with
   ``R_joint = min(sigma_x, s_train) * G / 2``, ``s_train`` the certificate's training sigma
   (``min_i sigma_i``, or the floor / ``sigma_0`` where it is data-independent, or the training
   sigma of the ensemble that certified the input).
2. real clean-label poisoning (feature collision): for each target class t (the runner-up of the
   attacked inputs), the class-t training samples nearest to the attacked inputs are moved TOWARDS
   them (``Delta``), and every attacked input is moved towards its nearest poisoned class-t
   training sample (``delta_x``). One ``Delta`` serves every attacked input whose prediction is not
   t; the training budget is a share of the SMALLEST budget in that group and each input's test
   perturbation takes the rest of ITS budget, so every (Delta, x) pair has joint L2 size
   ``<= scale * R_joint(x)`` (realised sizes are recomputed from the tensors and checked). All
   perturbed points are convex combinations of images in [0, 1], so no clipping is needed.
   With ``test_attack="pgd"`` (default) the test perturbation is then refined by L2 PGD against
   the RETRAINED ensemble (white box, expectation over fresh noise draws, never the evaluation
   noise), projected onto the same per-input budget and onto [0, 1].
3. the N members are retrained on ``D + Delta`` with the same seeds and sigmas (the same
   ``train_members`` call, a new checkpoint directory; ``grid_ensembles``: the ensemble that certified
   the attacked input) and predict on ``x + delta_x`` with the
   clean ``sigma_x`` and the same test-noise indices; a pair "flips" when the smoothed prediction
   (argmax of the votes, ties to the lowest class) differs from the clean one. A control retrain
   on the unchanged data must reproduce the clean votes exactly (the coupling the check needs).
4. scale 0.5 (R/2) is the falsification check (expected: no flip); larger scales (default 2x, 4x
   and 10x R) are the power check showing that the test can fail.

CLI: ``python -m certssb.tools.falsify [--members N] [--attacks K] [--out DIR] [--seed S] ...``; writes
``falsify.json`` into ``--out`` and prints
``falsification: tried=<n> flipped=<m> (within R/2); power check: tried=<n> flipped=<m> (at <s>x R)``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from certssb.certifier import BoundOptions, certify_grid, certify_scores, radius_variants
from certssb.config import load_option
from certssb.dataset import load_dataset
from certssb.ensemble.checkpoints import CheckpointStore, fingerprint_of
from certssb.ensemble.predict import MemberVotes, load_member, predict_members
from certssb.ensemble.predict_grid import predict_grid
from certssb.ensemble.train import train_members, train_single
from certssb.ensemble.vectorised import stack_models
from certssb.errors import CertSSBError, ConfigError
from certssb.model import model_factory
from certssb.seeding import make_generator
from certssb.sigma_optimiser import optimise_sigmas
from certssb.sigma_optimiser.sga import SGASettings

__all__ = ["FalsifyConfig", "ScaleResult", "build_attack", "main", "run_falsification"]

IN_RADIUS_SCALE = 0.5
SIGMA_RULES = ("sga", "fixed", "grid", "grid_ensembles")


@dataclass
class FalsifyConfig:
    members: int = 100
    attacks: int = 24  # (Delta, x) pairs per scale, at most (split over the target classes)
    seed: int = 0
    sigma: str = "sga"  # sga (Cert-SSB) | fixed (RAB) | grid (train at sigma_0, test sigma chosen from test_sigmas)
    #                     | grid_ensembles (one ensemble per sigma_trains value, the pair chosen per input)
    sigma_0: float = 0.5
    objective: str = "paper"  # sga: paper | joint (needs floor)
    floor: float | None = None  # sga: sigma_train_floor (training sigmas >= floor, certified with it)
    test_sigmas: tuple | None = (0.25, 0.35, 0.5)  # grid: candidate test sigmas, each <= sigma_0;
    #   grid_ensembles: each ensemble at every listed sigma <= its training sigma (None: at its own)
    sigma_trains: tuple = (0.25, 0.5)  # grid_ensembles: one ensemble per training sigma
    sga_iterations: int = 40
    sga_draws: int = 16
    epochs: int = 8
    surrogate_epochs: int = 8
    batch_size: int = 64
    lr: float = 1e-3
    hidden: tuple = (64,)
    alpha: float = 0.001
    k_poison: int = 4  # poisoned training samples per Delta
    inputs_per_delta: int = 1  # test inputs served by one Delta (1: Delta aimed at one x, strongest)
    train_share: float = math.sqrt(0.5)  # ||Delta|| = train_share * min budget of the group
    power_scales: tuple = (2.0, 4.0, 10.0)
    test_attack: str = "pgd"  # path (towards the target class) | pgd (path, then PGD on the retrained ensemble)
    pgd_steps: int = 20
    pgd_draws: int = 4  # fresh noise draws per member and step (never the evaluation noise)
    classes: tuple = (0, 1)
    device: str = "cpu"
    keep_checkpoints: bool = False  # False: an attack's retrained members are deleted once evaluated
    threads: int | None = 1  # tiny models: one intra-op thread avoids oversubscription on shared CPUs
    progress: bool = False

    def ensemble_cfg(self, epochs: int | None = None):
        """The ``ensemble=gaussian`` settings with this check's training knobs."""
        return load_option("ensemble", "gaussian", epochs=int(epochs if epochs is not None else self.epochs),
                           batch_size=int(self.batch_size), lr=float(self.lr), device=self.device)

    def sigma_cfg(self):
        """The ``sigma_optimiser`` option's settings (its yaml's values) with this check's knobs."""
        tests = None if self.test_sigmas is None else [float(s) for s in self.test_sigmas]
        if self.sigma == "grid":
            return load_option("sigma_optimiser", "grid", sigma_train=float(self.sigma_0), test_sigmas=tests)
        if self.sigma == "grid_ensembles":
            return load_option("sigma_optimiser", "grid_ensembles", sigma_trains=[float(t) for t in self.sigma_trains],
                               test_sigmas=tests)  # a bad sigma_trains is reported by its own key
        if self.sigma == "fixed":
            return load_option("sigma_optimiser", "fixed", sigma_0=float(self.sigma_0))
        return load_option("sigma_optimiser", self.sigma, sigma_0=float(self.sigma_0), device=self.device,
                           n_draws=int(self.sga_draws), iterations=int(self.sga_iterations), objective=self.objective,
                           sigma_train_floor=self.floor)

    def validate(self) -> None:
        if self.test_attack not in ("path", "pgd"):
            raise ConfigError(f"--test-attack must be path or pgd, got {self.test_attack!r}")
        if self.sigma not in SIGMA_RULES:
            raise ConfigError(f"--sigma must be one of {', '.join(SIGMA_RULES)}, got {self.sigma!r}")
        self.sigma_cfg().check(None)  # objective / floor / test_sigmas, one-line errors
        if self.members < 1 or self.attacks < 1 or self.k_poison < 1 or self.inputs_per_delta < 1:
            raise ConfigError("--members, --attacks, --k-poison and --inputs-per-delta must be >= 1")
        if not 0.0 <= self.train_share < 1.0:
            raise ConfigError(f"--train-share must be in [0, 1), got {self.train_share}")
        if any(s <= 0 for s in self.power_scales):
            raise ConfigError("--power-scales must be positive")


@dataclass
class Attack:
    """One training perturbation Delta and the test inputs (each with its own delta_x) it serves."""

    target: int
    x_train: torch.Tensor  # the poisoned training set (labels unchanged)
    poisoned_index: np.ndarray
    train_delta_l2: np.ndarray  # per poisoned sample
    test_index: np.ndarray  # into the test set
    x_test: torch.Tensor  # triggered inputs x + delta_x
    test_delta_l2: np.ndarray
    budget: np.ndarray  # scale * R_joint(x) per input

    @property
    def train_l2(self) -> float:
        return float(np.sqrt((self.train_delta_l2.astype(np.float64) ** 2).sum()))

    def joint_l2(self) -> np.ndarray:
        return np.sqrt(self.test_delta_l2.astype(np.float64) ** 2 + self.train_l2 ** 2)


@dataclass
class ScaleResult:
    scale: float
    tried: int = 0
    flipped: int = 0
    pairs: list = field(default_factory=list)
    deltas: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"scale": self.scale, "tried": self.tried, "flipped": self.flipped, "deltas": self.deltas,
                "pairs": self.pairs}


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).double()


def _move_towards(src: torch.Tensor, dst: torch.Tensor, eps: float) -> torch.Tensor:
    """``src`` moved by L2 ``min(eps, ||dst - src||)`` towards ``dst`` (a convex combination)."""
    d = dst.double() - src.double()
    dist = float(d.norm())
    if dist == 0.0 or eps <= 0.0:
        return src.clone()
    lam = min(1.0, eps / dist)
    return (src.double() + lam * d).to(src.dtype)


def _walk(src: torch.Tensor, waypoints: list[torch.Tensor], eps: float) -> torch.Tensor:
    """The point at arc length ``eps`` along the polyline ``src -> waypoints...`` (stops at the end)."""
    cur, left = src, float(eps)
    for w in waypoints:
        if left <= 0.0:
            break
        seg = float((w.double() - cur.double()).norm())
        cur = _move_towards(cur, w, left)
        left -= seg
    return cur


def build_attack(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, test_index: np.ndarray,
                 budget: np.ndarray, target: int, k_poison: int, train_share: float) -> Attack:
    """Feature-collision clean-label poisoning towards ``target`` for the inputs ``test_index``.

    ``budget[j]`` is the joint L2 size allowed for input ``test_index[j]``. The training budget
    ``T = train_share * min(budget)`` is spread over the ``k_poison`` class-``target`` training
    samples nearest to the attacked inputs (round robin over the inputs, each sample's nearest
    input first), each moved by ``T / sqrt(k)`` towards its input; input j is moved by
    ``sqrt(budget_j^2 - ||Delta||^2)`` towards its nearest poisoned class-``target`` sample.
    """
    test_index = np.asarray(test_index, dtype=np.int64)
    budget = np.asarray(budget, dtype=np.float64)
    # Aim a hair below the budget: the float32 images round the realised sizes (checked later).
    aim = np.maximum(0.0, budget * (1.0 - 1e-4) - 1e-5)
    xs = x_test[torch.from_numpy(test_index)]
    cand = torch.nonzero(y_train == target).flatten()
    if len(cand) == 0:
        raise CertSSBError(f"no training sample of class {target} to poison")
    dist = torch.cdist(_flat(xs), _flat(x_train[cand]))  # [m, c]
    # Round robin: each input in turn claims its nearest unclaimed candidate.
    order = np.argsort(dist.min(dim=1).values.numpy(), kind="stable")  # most exposed inputs first
    ranked = dist.argsort(dim=1).numpy()
    chosen: list[tuple[int, int]] = []  # (candidate position, input position)
    used: set[int] = set()
    ptr = np.zeros(len(xs), dtype=np.int64)
    k = min(int(k_poison), len(cand))
    while len(chosen) < k:
        progressed = False
        for j in order:
            while ptr[j] < ranked.shape[1] and int(ranked[j, ptr[j]]) in used:
                ptr[j] += 1
            if ptr[j] < ranked.shape[1]:
                c = int(ranked[j, ptr[j]])
                used.add(c)
                chosen.append((c, int(j)))
                progressed = True
                if len(chosen) >= k:
                    break
        if not progressed:
            break
    t_total = float(train_share) * float(aim.min())
    eps_train = t_total / math.sqrt(len(chosen)) if chosen else 0.0
    x_poison = x_train.clone()
    p_index = []
    for c, j in chosen:
        i = int(cand[c])
        x_poison[i] = _move_towards(x_train[i], xs[j], eps_train)
        p_index.append(i)
    p_index = np.asarray(p_index, dtype=np.int64)
    train_delta = _flat(x_poison[torch.from_numpy(p_index)] - x_train[torch.from_numpy(p_index)]).norm(dim=1).numpy() \
        if len(p_index) else np.zeros(0)
    train_l2 = float(np.sqrt((train_delta ** 2).sum()))
    # Test perturbation: along the path x -> nearest class-target sample of the POISONED training
    # set -> mean of the poisoned class-target samples (deeper into the target class), for an arc
    # length of the remaining budget. The realised ||delta_x|| (measured below) is at most that.
    cand_p = x_poison[cand]
    nearest = torch.cdist(_flat(xs), _flat(cand_p)).argmin(dim=1)
    centre = cand_p.double().mean(dim=0).to(x_train.dtype)
    x_trig = xs.clone()
    for j in range(len(xs)):
        eps_test = math.sqrt(max(0.0, aim[j] ** 2 - train_l2 ** 2))
        x_trig[j] = _walk(xs[j], [cand_p[nearest[j]], centre], eps_test)
    test_delta = _flat(x_trig - xs).norm(dim=1).numpy()
    return Attack(target=int(target), x_train=x_poison, poisoned_index=p_index, train_delta_l2=train_delta,
                  test_index=test_index, x_test=x_trig, test_delta_l2=test_delta, budget=budget)


class _Runner:
    """Shared state: data, fixed sigmas, clean ensemble and its certificates."""

    def __init__(self, cfg: FalsifyConfig, workdir: Path):
        self.cfg = cfg
        self.workdir = workdir
        self.timings: dict[str, float] = {}
        t0 = time.perf_counter()
        # a small set: converted to float32 once (the attacks here edit whole tensors)
        self.splits = load_dataset(load_option("dataset", "digits", classes=list(cfg.classes)), cfg.seed).to_float()
        self.factory = model_factory(load_option("model", "mlp", hidden=list(cfg.hidden)),
                                     tuple(self.splits.x_train.shape[1:]), self.splits.num_classes)
        self.ens = cfg.ensemble_cfg()
        # Sigmas: computed once from the clean data, then held fixed for every retrain.
        s = cfg.sigma_cfg()
        if isinstance(s, SGASettings):
            surrogate = train_single(self.factory, self.splits.x_train, self.splits.y_train, cfg.sigma_0,
                                     cfg.ensemble_cfg(cfg.surrogate_epochs), cfg.seed, "surrogate", cfg.device)
            raw_train, raw_test = (optimise_sigmas(s, surrogate, x, cfg.seed, purpose, device=cfg.device,
                                                   progress=cfg.progress).float()
                                   for purpose, x in (("train", self.splits.x_train), ("test-clean", self.splits.x_test)))
            sig = s.with_design(raw_train, raw_test, raw_test)  # training sigmas floored if a floor is set
        else:  # data-independent sigmas (the option's own; the grid designs choose the test sigma below)
            sig = s.sigmas(None, None, self.splits, self.splits.x_test, cfg.device, workdir, {}, cfg.progress)
        self.sig_train, self.sig_test = sig.train, sig.test_clean
        # One set of training sigmas per ensemble (grid_ensembles: one constant per sigma_trains
        # value), and per test input the ensemble that certifies it (0 unless grid_ensembles).
        self.ensemble_sigmas = s.ensembles(self.sig_train)
        self.ens_of = np.zeros(len(self.splits.x_test), dtype=np.int64)
        self.timings["sigma"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        test_index = np.arange(len(self.splits.x_test))
        per_input_train = None
        if cfg.sigma in ("grid", "grid_ensembles"):
            # every grid pair; each input keeps the chosen one (union bound over the grid) for the retrains
            stores = {e: self._train("clean", self.splits.x_train, e) for e in range(len(self.ensemble_sigmas))}
            gv = predict_grid(self.factory, [stores[e] for e in sorted(stores)], self.splits.x_test,
                              torch.from_numpy(test_index), s.candidates(), s.train_sigmas(), self.ens, cfg.seed,
                              cfg.members, selection=s.selection, n_select=s.n_selection_members(),
                              per_ensemble=s.per_ensemble, device=cfg.device, progress=cfg.progress)
            sel = certify_grid(gv, BoundOptions(cfg.alpha, mode="hard"))
            b = sel.bounds
            self.sig_test = torch.from_numpy(sel.sigma).float()
            if cfg.sigma == "grid_ensembles":
                per_input_train = np.asarray(sel.train_sigma, dtype=np.float64)
                self.ens_of = np.array([list(s.sigma_trains).index(float(t)) for t in per_input_train],
                                       dtype=np.int64)
            self.clean_votes = self._predict(stores, self.splits.x_test, test_index)  # at the chosen pairs
        else:
            self.clean_votes = self._train_predict("clean", self.splits.x_train, self.splits.x_test, test_index)
            b = certify_scores(self.clean_votes.prob_sum, self.clean_votes.votes, self.clean_votes.n_members,
                               alpha=cfg.alpha, mode="hard")
        self.timings["clean_ensemble"] = time.perf_counter() - t0
        self.bounds = b
        # the training-side sigma the certificate may assume (the floor / sigma_train when data-independent)
        self.sigma_train_min = float(sig.certificate_train_sigmas.min())
        self.radii = radius_variants(b.gap, self.sig_test.numpy().astype(np.float64), self.sigma_train_min)
        if per_input_train is not None:  # each input's own ensemble's training sigma
            self.radii["joint"] = np.minimum(self.sig_test.numpy().astype(np.float64), per_input_train) * b.gap / 2.0
        self.per_input_train = per_input_train
        self.r_joint = self.radii["joint"]
        self.prediction = b.prediction

    def _store(self, tag: str, x_train: torch.Tensor) -> CheckpointStore:
        fp = fingerprint_of({"tag": tag, "seed": self.cfg.seed, "members": self.cfg.members,
                             "ens": vars(self.ens), "hidden": list(self.cfg.hidden),
                             "x": fingerprint_of(np.round(x_train.numpy().astype(np.float64), 7).ravel().tolist())})
        return CheckpointStore(self.workdir / "members" / f"{tag}-{fp[:12]}", fp)

    def _train(self, tag: str, x_train: torch.Tensor, ensemble: int = 0) -> CheckpointStore:
        """The SAME train_members call as the clean run (seed, members, sigmas, labels), new store;
        ``ensemble``: which set of training sigmas (grid_ensembles: which sigma_trains value)."""
        store = self._store(f"{tag}-e{ensemble}" if len(self.ensemble_sigmas) > 1 else tag, x_train)
        train_members(self.factory, x_train, self.splits.y_train, self.ensemble_sigmas[ensemble], self.ens,
                      self.cfg.seed, range(self.cfg.members), store, device=self.cfg.device, progress=self.cfg.progress)
        return store

    def _train_for(self, tag: str, x_train: torch.Tensor, eval_index: np.ndarray) -> dict[int, CheckpointStore]:
        """The ensembles that certify the inputs ``eval_index``, retrained on ``x_train``."""
        return {int(e): self._train(tag, x_train, int(e)) for e in np.unique(self.ens_of[eval_index])}

    def _discard(self, stores) -> None:
        if not self.cfg.keep_checkpoints:
            for store in (stores.values() if isinstance(stores, dict) else [stores]):
                shutil.rmtree(store.directory, ignore_errors=True)

    def _predict(self, stores, x_eval: torch.Tensor, eval_index: np.ndarray) -> MemberVotes:
        """Votes on ``x_eval`` with the CLEAN inputs' sigma_x and test-noise indices, each input by
        the ensemble that certifies it (``stores``: one store, or ensemble -> store)."""
        stores = stores if isinstance(stores, dict) else {0: stores}
        eval_index = np.asarray(eval_index, dtype=np.int64)
        ens = self.ens_of[eval_index]
        prob = votes = None
        n_members = 0
        for e in np.unique(ens):
            pos = np.nonzero(ens == e)[0]
            idx = torch.as_tensor(eval_index[pos], dtype=torch.int64)
            v = predict_members(self.factory, stores[int(e)], x_eval[torch.from_numpy(pos)], self.sig_test[idx], idx,
                                self.ens, self.cfg.seed, range(self.cfg.members), device=self.cfg.device,
                                progress=self.cfg.progress)
            if prob is None:
                prob = np.zeros((len(eval_index), v.prob_sum.shape[1]), dtype=v.prob_sum.dtype)
                votes = np.zeros((len(eval_index), v.votes.shape[1]), dtype=v.votes.dtype)
            prob[pos], votes[pos], n_members = v.prob_sum, v.votes, v.n_members
        return MemberVotes(prob_sum=prob, votes=votes, n_members=n_members)

    def _train_predict(self, tag: str, x_train: torch.Tensor, x_eval: torch.Tensor, eval_index: np.ndarray):
        return self._predict(self._train(tag, x_train), x_eval, eval_index)

    def _pgd(self, store: CheckpointStore, tag: str, x0: torch.Tensor, x_start: torch.Tensor, eps: np.ndarray,
             sig_x: torch.Tensor, target: int, pred: np.ndarray) -> torch.Tensor:
        """L2 PGD on the retrained smoothed ensemble, started at ``x_start``: maximise the mean
        (over members and FRESH noise draws, expectation over transformation) of
        p_target - p_pred, within ``||x - x0|| <= eps`` and [0, 1]. The noise is drawn from its own
        generator, never the evaluation noise, so the attack targets the smoothed classifier and
        not the N particular draws that estimate it."""
        members = list(range(self.cfg.members))
        params, buffers, _, call = stack_models([load_member(self.factory, store, k, "cpu") for k in members])
        params = {k: v.detach() for k, v in params.items()}
        gen = make_generator(self.cfg.seed, "falsify-pgd", tag)
        b, shape = x0.shape[0], tuple(x0.shape[1:])
        d = self.cfg.pgd_draws
        eps_t = torch.as_tensor(eps, dtype=torch.float32).view(-1, *([1] * len(shape)))
        sig = sig_x.view(1, -1, *([1] * len(shape)))
        pred_t = torch.as_tensor(pred, dtype=torch.int64)
        step = 2.5 * eps_t / max(1, self.cfg.pgd_steps)

        def objective(x):  # [b]: mean p_target - p_pred
            xs = x.unsqueeze(0).expand(len(members) * d, *x.shape).reshape(len(members), d * b, *shape)
            noise = torch.randn((len(members), d * b) + shape, generator=gen)
            xs = xs + sig.repeat(1, d, *([1] * len(shape))) * noise
            prob = torch.softmax(call(params, buffers, xs), dim=-1).reshape(len(members) * d, b, -1).mean(0)
            return prob[:, target] - prob.gather(1, pred_t.view(-1, 1)).squeeze(1)

        def project(x):
            delta = x - x0
            n = delta.flatten(1).norm(dim=1).view_as(eps_t).clamp_min(1e-12)
            return (x0 + delta * torch.clamp(eps_t / n, max=1.0)).clamp(0.0, 1.0)

        best = x_start.clone()
        with torch.no_grad():
            best_val = objective(best)
        x = best.clone()
        for _ in range(self.cfg.pgd_steps):
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

    def attack_groups(self) -> dict[int, np.ndarray]:
        """Per target class (the runner-up), the certified inputs to attack: those nearest to the
        target class first, ``cfg.attacks`` in all (split evenly over the target classes)."""
        certified = np.nonzero(self.r_joint > 0)[0]
        targets = self.bounds.runner_up
        groups = {int(t): certified[targets[certified] == t] for t in np.unique(targets[certified])}
        per = max(1, int(math.ceil(self.cfg.attacks / max(1, len(groups)))))
        x_train, y_train = self.splits.x_train, self.splits.y_train
        out = {}
        for t, idx in groups.items():
            cand = x_train[y_train == t]
            d = torch.cdist(_flat(self.splits.x_test[torch.from_numpy(idx)]), _flat(cand)).min(dim=1).values.numpy()
            out[t] = idx[np.argsort(d, kind="stable")[:per]]
        return out

    def run_scale(self, scale: float, groups: dict[int, np.ndarray]) -> ScaleResult:
        res = ScaleResult(scale=float(scale))
        sig_x = self.sig_test.numpy().astype(np.float64)
        chunks = []
        for t, idx in groups.items():
            idx = idx[np.argsort(-self.r_joint[idx], kind="stable")]  # similar radii share a Delta
            m = int(self.cfg.inputs_per_delta)
            chunks += [(t, idx[s:s + m]) for s in range(0, len(idx), m)]
        for n_delta, (t, idx) in enumerate(chunks):
            if len(idx) == 0:
                continue
            budget = scale * self.r_joint[idx]
            atk = build_attack(self.splits.x_train, self.splits.y_train, self.splits.x_test, idx, budget, t,
                               self.cfg.k_poison, self.cfg.train_share)
            joint = atk.joint_l2()
            if np.any(joint > budget):
                raise AssertionError(f"attack exceeds its budget: {joint} > {budget}")
            if scale <= IN_RADIUS_SCALE and np.any(joint >= self.r_joint[idx]):
                raise AssertionError("an in-radius attack is not strictly inside the certified radius")
            if float(atk.x_train.min()) < 0 or float(atk.x_train.max()) > 1 or float(atk.x_test.min()) < 0 \
                    or float(atk.x_test.max()) > 1:
                raise AssertionError("perturbed inputs left [0, 1]")
            tag = f"s{scale:g}-d{n_delta}"
            stores = self._train_for(tag, atk.x_train, idx)
            if self.cfg.test_attack == "pgd":
                x0 = self.splits.x_test[torch.from_numpy(idx)]
                eps_test = np.sqrt(np.maximum(0.0, (budget * (1 - 1e-4) - 1e-5) ** 2 - atk.train_l2 ** 2))
                x_new = atk.x_test.clone()
                for e, store in stores.items():  # each input against the ensemble that certifies it
                    pos = np.nonzero(self.ens_of[idx] == e)[0]
                    p = torch.from_numpy(pos)
                    x_new[p] = self._pgd(store, f"{tag}-e{e}", x0[p], atk.x_test[p], eps_test[pos],
                                         self.sig_test[torch.from_numpy(idx[pos])], t, self.prediction[idx[pos]])
                atk.x_test = x_new
                atk.test_delta_l2 = _flat(atk.x_test - x0).norm(dim=1).numpy()
                joint = atk.joint_l2()
                if np.any(joint > budget) or (scale <= IN_RADIUS_SCALE and np.any(joint >= self.r_joint[idx])):
                    raise AssertionError(f"PGD attack exceeds its budget: {joint} > {budget}")
            votes = self._predict(stores, atk.x_test, idx)
            self._discard(stores)
            pred_new = votes.votes.argmax(axis=1)
            res.deltas.append({"target": t, "poisoned_index": atk.poisoned_index.tolist(),
                               "train_delta_l2": atk.train_delta_l2.tolist(), "train_l2": atk.train_l2,
                               "n_inputs": int(len(idx))})
            for j, i in enumerate(idx):
                flipped = bool(pred_new[j] != self.prediction[i])
                res.tried += 1
                res.flipped += int(flipped)
                sig_tr = self.ensemble_sigmas[int(self.ens_of[i])].numpy().astype(np.float64)
                whitened_train = float(np.sqrt(((atk.train_delta_l2 / sig_tr[atk.poisoned_index]) ** 2).sum()))
                whitened = math.sqrt((atk.test_delta_l2[j] / sig_x[i]) ** 2 + whitened_train ** 2)
                res.pairs.append({
                    "test_index": int(i), "target": t, "clean_prediction": int(self.prediction[i]),
                    "new_prediction": int(pred_new[j]), "flipped": flipped,
                    "clean_votes": self.clean_votes.votes[i].tolist(), "new_votes": votes.votes[j].tolist(),
                    "r_joint": float(self.r_joint[i]), "r_paper": float(self.radii["paper"][i]),
                    "sigma_train": float(sig_tr.min()),
                    "budget_gap_half": float(self.radii["budget"][i]), "sigma_x": float(sig_x[i]),
                    "budget": float(budget[j]), "test_delta_l2": float(atk.test_delta_l2[j]),
                    "train_l2": atk.train_l2, "joint_l2": float(joint[j]),
                    "joint_over_r": float(joint[j] / self.r_joint[i]),
                    "whitened_l2": whitened, "whitened_over_budget": whitened / float(self.radii["budget"][i]),
                })
        return res


def run_falsification(cfg: FalsifyConfig, out: Path | None = None, workdir: Path | None = None) -> dict:
    """Run the whole check; returns (and with ``out`` writes ``out/falsify.json``) the report."""
    cfg.validate()
    t_start = time.perf_counter()
    before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    tmp = None
    try:
        if workdir is None:
            if out is not None:
                workdir = Path(out) / "work"
            else:
                tmp = tempfile.TemporaryDirectory(prefix="certssb-falsify-")
                workdir = Path(tmp.name)
        workdir.mkdir(parents=True, exist_ok=True)
        r = _Runner(cfg, workdir)
        groups = r.attack_groups()
        # Control: the same train_members call on the UNCHANGED data in a fresh store must give
        # exactly the clean votes (the coupling the check relies on: same seeds, sigmas, noise).
        t0 = time.perf_counter()
        ctrl_idx = np.concatenate([g for g in groups.values()]) if groups else np.zeros(0, np.int64)
        control = None
        if len(ctrl_idx):
            stores = r._train_for("control", r.splits.x_train, ctrl_idx)
            cv = r._predict(stores, r.splits.x_test[torch.from_numpy(ctrl_idx)], ctrl_idx)
            r._discard(stores)
            control = bool(np.array_equal(cv.votes, r.clean_votes.votes[ctrl_idx]))
        r.timings["control"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        within = r.run_scale(IN_RADIUS_SCALE, groups)
        r.timings["within"] = time.perf_counter() - t0
        power = []
        for s in cfg.power_scales:
            t0 = time.perf_counter()
            power.append(r.run_scale(float(s), groups))
            r.timings[f"power_{s:g}"] = time.perf_counter() - t0
        y_test = r.splits.y_test.numpy()
        trained = torch.cat(r.ensemble_sigmas)
        cert_trains = ([float(t.min()) for t in r.ensemble_sigmas] if cfg.sigma == "grid_ensembles"
                       else [r.sigma_train_min])
        certified = r.r_joint > 0
        report = {
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()},
            "dataset": {"n_train": int(len(r.splits.x_train)), "n_test": int(len(y_test)),
                        "classes": list(cfg.classes)},
            "sigma": {"rule": cfg.sigma, "objective": cfg.objective, "floor": cfg.floor,
                      "train_min": r.sigma_train_min, "trained_min": float(trained.min()),
                      "train_median": float(trained.median()), "train_max": float(trained.max()),
                      "test_min": float(r.sig_test.min()), "test_median": float(r.sig_test.median()),
                      "test_max": float(r.sig_test.max()),
                      "sigma_trains": cert_trains,  # the certificate's training sigma, per ensemble
                      "inputs_by_train_sigma": {f"{t:g}": int((r.ens_of == e).sum()) for e, t in enumerate(cert_trains)}},
            "clean": {"accuracy": float(np.mean(r.prediction == y_test)),
                      "certified_fraction": float(np.mean(certified)),
                      "r_joint_median": float(np.median(r.r_joint[certified])) if certified.any() else 0.0,
                      "r_joint_min": float(r.r_joint[certified].min()) if certified.any() else 0.0,
                      "r_joint_max": float(r.r_joint.max()),
                      "r_paper_median": float(np.median(r.radii["paper"][certified])) if certified.any() else 0.0},
            "control_votes_identical": control,
            "within": within.as_dict(),
            "power": [p.as_dict() for p in power],
            "timings": {**{k: round(v, 2) for k, v in r.timings.items()},
                        "total": round(time.perf_counter() - t_start, 2)},
        }
        report["summary"] = summary_line(report)
        if out is not None:
            Path(out).mkdir(parents=True, exist_ok=True)
            (Path(out) / "falsify.json").write_text(json.dumps(report, indent=2))
        return report
    finally:
        torch.set_num_threads(before)
        if tmp is not None:
            tmp.cleanup()


def summary_line(report: dict) -> str:
    w = report["within"]
    text = f"falsification: tried={w['tried']} flipped={w['flipped']} (within R/2)"
    if report["power"]:
        p = report["power"][-1]
        text += f"; power check: tried={p['tried']} flipped={p['flipped']} (at {p['scale']:g}x R)"
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m certssb.tools.falsify",
        description=("Try to break the certificates: real clean-label poisoning plus a test perturbation of half "
                     "the certified joint radius, the members retrained with the same seeds and sigmas, and count "
                     "the smoothed predictions that flip (expected: none); then a power check at several times the "
                     "radius, where flips must appear. Writes OUT/falsify.json and prints one summary line. "
                     "Example: python -m certssb.tools.falsify --members 50 --attacks 10 --sigma grid"))
    d = FalsifyConfig()
    p.add_argument("--members", type=int, default=d.members, help="ensemble size N")
    p.add_argument("--attacks", type=int, default=d.attacks, help="(Delta, x) pairs per scale, at most")
    p.add_argument("--out", type=Path, default=Path("falsify-out"), help="output directory")
    p.add_argument("--seed", type=int, default=d.seed,
                   help=f"run seed: the data split, member seeds and noise, the attacked inputs (default {d.seed})")
    p.add_argument("--sigma", choices=SIGMA_RULES, default=d.sigma,
                   help="sga (Cert-SSB), fixed (RAB), grid (train at --sigma-0, test sigma from --test-sigmas) or "
                        "grid_ensembles (one ensemble per --sigma-trains value)")
    p.add_argument("--sigma-0", type=float, default=d.sigma_0,
                   help=f"sga: SGA's start and the surrogate's noise; fixed: the one sigma; grid: the training sigma "
                        f"(default {d.sigma_0})")
    p.add_argument("--objective", choices=("paper", "joint"), default=d.objective,
                   help="sga objective: paper (sigma_x G/2) or joint (min(sigma_x, floor) G/2; needs --floor)")
    p.add_argument("--floor", type=float, default=d.floor, help="sga: training sigmas >= floor, certified with it")
    p.add_argument("--test-sigmas", type=float, nargs="+", default=None,
                   help="grid: candidate test sigmas, each <= --sigma-0 (default 0.25 0.35 0.5); grid_ensembles: "
                        "each ensemble at every listed sigma <= its training sigma (default: at its own)")
    p.add_argument("--sigma-trains", type=float, nargs="+", default=list(d.sigma_trains),
                   help="grid_ensembles: one ensemble per training sigma")
    p.add_argument("--epochs", type=int, default=d.epochs,
                   help=f"training epochs of every member (and of the SGA surrogate) (default {d.epochs})")
    p.add_argument("--sga-iterations", type=int, default=d.sga_iterations,
                   help=f"sga: gradient-ascent steps on the sigmas (default {d.sga_iterations})")
    p.add_argument("--k-poison", type=int, default=d.k_poison, help="poisoned training samples per Delta")
    p.add_argument("--inputs-per-delta", type=int, default=d.inputs_per_delta,
                   help="test inputs served by one training perturbation Delta (1: one retrain per attack)")
    p.add_argument("--train-share", type=float, default=d.train_share,
                   help="||Delta|| as a share of the smallest joint budget of its inputs")
    p.add_argument("--power-scales", type=float, nargs="*", default=list(d.power_scales),
                   help="attack sizes as multiples of R_joint for the power check")
    p.add_argument("--test-attack", choices=("path", "pgd"), default=d.test_attack,
                   help="test perturbation: path towards the target class, or that refined by PGD")
    p.add_argument("--pgd-steps", type=int, default=d.pgd_steps,
                   help=f"--test-attack pgd: L2 PGD steps against the retrained ensemble (default {d.pgd_steps})")
    p.add_argument("--threads", type=int, default=d.threads, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--progress", action="store_true", help="show training progress (bars on a terminal)")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep every retrained ensemble under OUT/work (about 2.6 MB per retrain at N=100)")
    return p


def _parse(argv) -> tuple[FalsifyConfig, Path]:
    d = FalsifyConfig()
    a = build_parser().parse_args(argv)
    cfg = FalsifyConfig(members=a.members, attacks=a.attacks, seed=a.seed, sigma=a.sigma, sigma_0=a.sigma_0,
                        objective=a.objective, floor=a.floor, sigma_trains=tuple(a.sigma_trains),
                        test_sigmas=(tuple(a.test_sigmas) if a.test_sigmas is not None
                                     else (None if a.sigma == "grid_ensembles" else d.test_sigmas)),
                        epochs=a.epochs, surrogate_epochs=a.epochs, sga_iterations=a.sga_iterations,
                        k_poison=a.k_poison, inputs_per_delta=a.inputs_per_delta,
                        test_attack=a.test_attack, pgd_steps=a.pgd_steps, train_share=a.train_share,
                        power_scales=tuple(a.power_scales), keep_checkpoints=a.keep_checkpoints,
                        threads=a.threads, progress=a.progress)
    return cfg, a.out


def main(argv=None) -> int:
    try:
        cfg, out = _parse(argv)
        report = run_falsification(cfg, out)
    except CertSSBError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    c = report["clean"]
    print(f"clean accuracy {c['accuracy']:.3f}, certified {c['certified_fraction']:.3f}, "
          f"R_joint median {c['r_joint_median']:.3f} (min {c['r_joint_min']:.3f}), "
          f"sigma_train_min {report['sigma']['train_min']:.3f}; control retrain identical: "
          f"{report['control_votes_identical']}")
    for p in report["power"]:
        print(f"  power {p['scale']:g}x R: tried={p['tried']} flipped={p['flipped']}")
    print(f"report: {Path(out) / 'falsify.json'} ({report['timings']['total']:.1f} s)")
    print(report["summary"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
