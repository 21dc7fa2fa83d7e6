"""The Gaussian family's attack: real clean-label poisoning by feature collision plus a test
perturbation, within a joint L2 budget per attacked input (:func:`build_attack`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from certssb.errors import CertSSBError

__all__ = ["Attack", "build_attack", "flat", "move_towards", "walk"]


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


def flat(x: torch.Tensor) -> torch.Tensor:
    """``[n, ...]`` -> float64 ``[n, d]``."""
    return x.reshape(x.shape[0], -1).double()


def move_towards(src: torch.Tensor, dst: torch.Tensor, eps: float) -> torch.Tensor:
    """``src`` moved by L2 ``min(eps, ||dst - src||)`` towards ``dst`` (a convex combination)."""
    d = dst.double() - src.double()
    dist = float(d.norm())
    if dist == 0.0 or eps <= 0.0:
        return src.clone()
    lam = min(1.0, eps / dist)
    return (src.double() + lam * d).to(src.dtype)


def walk(src: torch.Tensor, waypoints: list[torch.Tensor], eps: float) -> torch.Tensor:
    """The point at arc length ``eps`` along the polyline ``src -> waypoints...`` (stops at the end)."""
    cur, left = src, float(eps)
    for w in waypoints:
        if left <= 0.0:
            break
        seg = float((w.double() - cur.double()).norm())
        cur = move_towards(cur, w, left)
        left -= seg
    return cur


def _claim_round_robin(dist: torch.Tensor, k: int) -> list[tuple[int, int]]:
    """``(candidate, input)`` pairs: each input in turn (most exposed first) claims its nearest
    unclaimed candidate, until ``k`` are claimed or none is left. ``dist``: [inputs, candidates]."""
    order = np.argsort(dist.min(dim=1).values.numpy(), kind="stable")
    ranked = dist.argsort(dim=1).numpy()
    chosen: list[tuple[int, int]] = []
    used: set[int] = set()
    ptr = np.zeros(dist.shape[0], dtype=np.int64)
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
    return chosen


def _poison_train(x_train, xs, cand, chosen, eps_train: float) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Every chosen class-target sample moved by ``eps_train`` towards its input: (poisoned set,
    poisoned indices, realised L2 per poisoned sample)."""
    x_poison = x_train.clone()
    p_index = []
    for c, j in chosen:
        i = int(cand[c])
        x_poison[i] = move_towards(x_train[i], xs[j], eps_train)
        p_index.append(i)
    p_index = np.asarray(p_index, dtype=np.int64)
    if not len(p_index):
        return x_poison, p_index, np.zeros(0)
    rows = torch.from_numpy(p_index)
    return x_poison, p_index, flat(x_poison[rows] - x_train[rows]).norm(dim=1).numpy()


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
    chosen = _claim_round_robin(torch.cdist(flat(xs), flat(x_train[cand])), min(int(k_poison), len(cand)))
    eps_train = float(train_share) * float(aim.min()) / math.sqrt(len(chosen)) if chosen else 0.0
    x_poison, p_index, train_delta = _poison_train(x_train, xs, cand, chosen, eps_train)
    train_l2 = float(np.sqrt((train_delta ** 2).sum()))
    # Test perturbation: along the path x -> nearest class-target sample of the POISONED training
    # set -> mean of the poisoned class-target samples (deeper into the target class), for an arc
    # length of the remaining budget. The realised ||delta_x|| (measured below) is at most that.
    cand_p = x_poison[cand]
    nearest = torch.cdist(flat(xs), flat(cand_p)).argmin(dim=1)
    centre = cand_p.double().mean(dim=0).to(x_train.dtype)
    x_trig = xs.clone()
    for j in range(len(xs)):
        eps_test = math.sqrt(max(0.0, aim[j] ** 2 - train_l2 ** 2))
        x_trig[j] = walk(xs[j], [cand_p[nearest[j]], centre], eps_test)
    test_delta = flat(x_trig - xs).norm(dim=1).numpy()
    return Attack(target=int(target), x_train=x_poison, poisoned_index=p_index, train_delta_l2=train_delta,
                  test_index=test_index, x_test=x_trig, test_delta_l2=test_delta, budget=budget)
