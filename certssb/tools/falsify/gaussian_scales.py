"""One scale of the Gaussian check: every attacked input at ``scale * R_joint(x)``, its ensemble
retrained on the poisoned set, the new smoothed prediction compared with the clean one."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .config import IN_RADIUS_SCALE
from .gaussian_attack import Attack, build_attack, flat
from .gaussian_pgd import PGDProblem, pgd_attack
from .gaussian_runner import GaussianRunner

__all__ = ["ScaleResult", "run_scale"]


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


def _chunks(runner: GaussianRunner, groups: dict[int, np.ndarray]) -> list[tuple[int, np.ndarray]]:
    """(target, inputs) per training perturbation: ``inputs_per_delta`` inputs of similar radii."""
    chunks = []
    for t, idx in groups.items():
        idx = idx[np.argsort(-runner.r_joint[idx], kind="stable")]  # similar radii share a Delta
        m = int(runner.cfg.inputs_per_delta)
        chunks += [(t, idx[s:s + m]) for s in range(0, len(idx), m)]
    return [(t, idx) for t, idx in chunks if len(idx)]


def _check_sizes(atk: Attack, budget: np.ndarray, r_joint: np.ndarray, scale: float, what: str) -> None:
    """The realised joint sizes within the budget (strictly inside R for the in-radius scale)."""
    joint = atk.joint_l2()
    if np.any(joint > budget):
        raise AssertionError(f"{what} exceeds its budget: {joint} > {budget}")
    if scale <= IN_RADIUS_SCALE and np.any(joint >= r_joint):
        raise AssertionError(f"an in-radius {what} is not strictly inside the certified radius")


def _refine_pgd(runner: GaussianRunner, atk: Attack, stores: dict, budget: np.ndarray, tag: str) -> None:
    """Replace ``atk.x_test`` by PGD against the retrained ensembles, each input against the one
    that certifies it, within the test budget that the training perturbation leaves."""
    idx = atk.test_index
    x0 = runner.splits.x_test[torch.from_numpy(idx)]
    eps_test = np.sqrt(np.maximum(0.0, (budget * (1 - 1e-4) - 1e-5) ** 2 - atk.train_l2 ** 2))
    x_new = atk.x_test.clone()
    for e, store in stores.items():
        pos = np.nonzero(runner.ens_of[idx] == e)[0]
        p = torch.from_numpy(pos)
        problem = PGDProblem(x0=x0[p], x_start=atk.x_test[p], eps=eps_test[pos],
                             sig_x=runner.sig_test[torch.from_numpy(idx[pos])], target=atk.target,
                             pred=runner.prediction[idx[pos]])
        x_new[p] = pgd_attack(runner.factory, store, runner.cfg.members, problem, runner.cfg.pgd_steps,
                              runner.cfg.pgd_draws, (runner.cfg.seed, "falsify-pgd", f"{tag}-e{e}"))
    atk.x_test = x_new
    atk.test_delta_l2 = flat(atk.x_test - x0).norm(dim=1).numpy()


def _pair(runner: GaussianRunner, atk: Attack, j: int, new_votes: np.ndarray, budget: float) -> dict:
    """The record of input ``atk.test_index[j]`` under the attack ``atk``."""
    i = int(atk.test_index[j])
    sig_x = float(runner.sig_test[i])
    pred_new = int(new_votes.argmax())
    sig_tr = runner.ensemble_sigmas[int(runner.ens_of[i])].numpy().astype(np.float64)
    whitened_train = float(np.sqrt(((atk.train_delta_l2 / sig_tr[atk.poisoned_index]) ** 2).sum()))
    whitened = math.sqrt((atk.test_delta_l2[j] / sig_x) ** 2 + whitened_train ** 2)
    joint = float(atk.joint_l2()[j])
    return {
        "test_index": i, "target": atk.target, "clean_prediction": int(runner.prediction[i]),
        "new_prediction": pred_new, "flipped": bool(pred_new != runner.prediction[i]),
        "clean_votes": runner.clean_votes.votes[i].tolist(), "new_votes": new_votes.tolist(),
        "r_joint": float(runner.r_joint[i]), "r_paper": float(runner.radii["paper"][i]),
        "sigma_train": float(sig_tr.min()),
        "budget_gap_half": float(runner.radii["budget"][i]), "sigma_x": sig_x,
        "budget": float(budget), "test_delta_l2": float(atk.test_delta_l2[j]),
        "train_l2": atk.train_l2, "joint_l2": joint, "joint_over_r": joint / float(runner.r_joint[i]),
        "whitened_l2": whitened, "whitened_over_budget": whitened / float(runner.radii["budget"][i]),
    }


def run_scale(runner: GaussianRunner, scale: float, groups: dict[int, np.ndarray]) -> ScaleResult:
    """Every chunk of attacked inputs at ``scale * R_joint``: attack, retrain, predict, compare."""
    res = ScaleResult(scale=float(scale))
    splits = runner.splits
    for n_delta, (t, idx) in enumerate(_chunks(runner, groups)):
        budget = scale * runner.r_joint[idx]
        atk = build_attack(splits.x_train, splits.y_train, splits.x_test, idx, budget, t, runner.cfg.k_poison,
                           runner.cfg.train_share)
        _check_sizes(atk, budget, runner.r_joint[idx], scale, "attack")
        if float(atk.x_train.min()) < 0 or float(atk.x_train.max()) > 1 or float(atk.x_test.min()) < 0 \
                or float(atk.x_test.max()) > 1:
            raise AssertionError("perturbed inputs left [0, 1]")
        tag = f"s{scale:g}-d{n_delta}"
        stores = runner.train_for(tag, atk.x_train, idx)
        if runner.cfg.test_attack == "pgd":
            _refine_pgd(runner, atk, stores, budget, tag)
            _check_sizes(atk, budget, runner.r_joint[idx], scale, "PGD attack")
        votes = runner.predict(stores, atk.x_test, idx)
        runner.discard(stores)
        res.deltas.append({"target": t, "poisoned_index": atk.poisoned_index.tolist(),
                           "train_delta_l2": atk.train_delta_l2.tolist(), "train_l2": atk.train_l2,
                           "n_inputs": int(len(idx))})
        for j in range(len(idx)):
            pair = _pair(runner, atk, j, votes.votes[j], budget[j])
            res.tried += 1
            res.flipped += int(pair["flipped"])
            res.pairs.append(pair)
    return res
