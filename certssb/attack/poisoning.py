"""``poison``: apply an attack to a dataset and record the realised trigger sizes.

``round(poison_rate * n_train)`` training samples (half rounded up) are drawn uniformly, with
``make_generator(seed, "poison")``, among the samples whose label is NOT the target; they get the
trigger and the target label. Every test input gets the trigger too (labels untouched: the
evaluation decides which convention to use). Realised sizes are ``||x' - x||_2`` after clipping,
in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from certssb.errors import ConfigError
from certssb.seeding import make_generator

from .base import Trigger
from .build import build_trigger


@dataclass
class PoisonedData:
    x_train: torch.Tensor  # poisoned training images (a copy when anything was poisoned)
    y_train: torch.Tensor  # labels, poisoned samples relabelled to ``target``
    poisoned_index: torch.Tensor  # int64 sorted indices into the training set
    train_delta_l2: torch.Tensor  # float64 realised ||x'_i - x_i||_2, aligned with poisoned_index
    x_test_triggered: torch.Tensor  # every test input with the trigger (x_test itself for ``none``)
    test_delta_l2: torch.Tensor  # float64 realised ||delta||_2 per test input
    target: int
    name: str = "none"
    trigger: Trigger | None = field(default=None, repr=False)

    def joint_l2(self) -> torch.Tensor:
        """Per test input ``sqrt(test_delta^2 + sum_i train_delta_i^2)`` (float64)."""
        train_sq = (self.train_delta_l2.to(torch.float64) ** 2).sum()
        return torch.sqrt(self.test_delta_l2.to(torch.float64) ** 2 + train_sq)

    @property
    def num_poisoned(self) -> int:
        return int(self.poisoned_index.numel())


def realised_l2(triggered: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """``||triggered_i - clean_i||_2`` per sample, float64."""
    return (triggered.to(torch.float64) - clean.to(torch.float64)).flatten(1).norm(dim=1)


def choose_poisoned(y: torch.Tensor, target: int, count: int, seed: int) -> torch.Tensor:
    """``count`` sorted indices drawn uniformly among samples with ``y != target``."""
    candidates = torch.nonzero(y != target).flatten()
    if count > candidates.numel():
        raise ConfigError(
            f"attack.poison_rate asks for {count} poisoned samples but only {candidates.numel()} training samples "
            f"are outside target class {target}: lower attack.poison_rate"
        )
    order = torch.randperm(int(candidates.numel()), generator=make_generator(seed, "poison"))[:count]
    return candidates[order].sort().values


def poison(splits, settings, seed: int) -> PoisonedData:
    """Poison ``splits`` (a ``DatasetSplits``) with the attack ``settings``; see the module docstring."""
    name, target, rate = settings.name, int(settings.target), float(settings.poison_rate)
    x_train, y_train, x_test = splits.x_train, splits.y_train, splits.x_test
    n_test = int(x_test.shape[0])
    trigger = build_trigger(settings, tuple(x_train.shape[1:]), splits.name)
    if trigger is None:
        return PoisonedData(
            x_train=x_train,
            y_train=y_train,
            poisoned_index=torch.zeros(0, dtype=torch.int64),
            train_delta_l2=torch.zeros(0, dtype=torch.float64),
            x_test_triggered=x_test,
            test_delta_l2=torch.zeros(n_test, dtype=torch.float64),
            target=target,
            name=name,
        )
    n_train = int(y_train.shape[0])
    count = int(math.floor(rate * n_train + 0.5))
    index = choose_poisoned(y_train, target, count, seed)
    new_x, new_y = x_train.clone(), y_train.clone()
    if count:
        triggered = trigger.apply(x_train[index])
        new_x[index] = triggered
        new_y[index] = target
        train_l2 = realised_l2(triggered, x_train[index])
    else:
        train_l2 = torch.zeros(0, dtype=torch.float64)
    x_test_triggered = trigger.apply(x_test)
    return PoisonedData(
        x_train=new_x,
        y_train=new_y,
        poisoned_index=index,
        train_delta_l2=train_l2,
        x_test_triggered=x_test_triggered,
        test_delta_l2=realised_l2(x_test_triggered, x_test),
        target=target,
        name=name,
        trigger=trigger,
    )
