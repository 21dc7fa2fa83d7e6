"""Poisoning: apply an attack to a dataset and record the realised trigger sizes.

``poison(splits, settings, seed, context)`` is the one call the pipeline makes; the attack's
settings decide how (``AttackSettings.poison``). Every configured attack goes through
``poison_with_policy``: ``round(poison_rate * n_train)`` training samples (half rounded up) are
drawn uniformly, with ``make_generator(seed, "poison")``, among the samples the attack's
``LabelPolicy`` may poison (``certssb.attack.policy``: all-to-one: those whose label is NOT the
target; all-to-all: every sample; clean-label: those OF the target class); they get the trigger
and the policy's label. An attack may first prepare the chosen inputs (label-consistent's PGD)
and add WaNet's noise-mode samples. Every test input gets the trigger too (labels untouched:
the evaluation decides which convention to use, ``PoisonedData.attack_labels``). Realised sizes
are ``||x' - x||_2`` after clipping, against the clean inputs, in float64. uint8 splits stay
uint8: the changed training rows are kept as float32 (re-quantising them would change their
realised sizes) and the test set is triggered per batch (``certssb.attack.triggered``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from certssb.dataset.batched import BatchedImages
from certssb.dataset.patched import PatchedImages
from certssb.config import check_int, check_range
from certssb.errors import ConfigError
from certssb.seeding import make_generator

from .base import Trigger
from .policy import LabelPolicy, attack_labels, attack_success_mask, parse_policy, poison_candidates
from .triggered import TriggeredImages


@dataclass
class PoisonedData:
    """A poisoned dataset and the realised trigger sizes.

    With uint8 splits (what ``load_dataset`` returns) ``x_train`` is a ``PatchedImages`` (clean
    rows uint8, poisoned and cross rows the exact float32 values the attack produced) and
    ``x_test_triggered`` a ``TriggeredImages`` (the trigger applied per batch when read); both
    are read as float32 batches (``x[idx]``). With float tensor splits both are float tensors.
    """

    x_train: torch.Tensor | BatchedImages  # poisoned training images (never the clean set modified in place)
    y_train: torch.Tensor  # labels, poisoned samples relabelled to ``target``
    poisoned_index: torch.Tensor  # int64 sorted indices into the training set
    train_delta_l2: torch.Tensor  # float64 realised ||x'_i - x_i||_2, aligned with poisoned_index
    x_test_triggered: torch.Tensor | BatchedImages  # every test input with the trigger (x_test itself for ``none``)
    test_delta_l2: torch.Tensor  # float64 realised ||delta||_2 per test input
    target: int
    name: str = "none"
    trigger: Trigger | None = field(default=None, repr=False)
    policy: str = "all_to_one"  # a ``LabelPolicy`` value: how poisoned samples were chosen and relabelled
    # WaNet's noise mode: further training samples perturbed with their labels kept (empty otherwise)
    cross_index: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.int64))
    cross_delta_l2: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.float64))
    num_classes: int | None = None  # of the dataset (all-to-all's labels need it)

    def joint_l2(self) -> torch.Tensor:
        """Per test input ``sqrt(test_delta^2 + sum_i train_delta_i^2)`` (float64).

        The sum runs over every training sample the attack changed: the poisoned ones and, for
        WaNet's noise mode, the cross samples.
        """
        train_sq = (self.changed_delta_l2() ** 2).sum()
        return torch.sqrt(self.test_delta_l2.to(torch.float64) ** 2 + train_sq)

    @property
    def num_poisoned(self) -> int:
        return int(self.poisoned_index.numel())

    def changed_index(self) -> torch.Tensor:
        """Indices of every training sample the attack changed: the poisoned ones, then WaNet's
        noise-mode (cross) samples; aligned with :meth:`changed_delta_l2`."""
        return torch.cat([self.poisoned_index.to(torch.int64), self.cross_index.to(torch.int64)])

    def changed_delta_l2(self) -> torch.Tensor:
        """Realised L2 sizes (float64) of the samples of :meth:`changed_index`: what the joint size,
        the whitened attack size and the poisoned-sample count must cover."""
        return torch.cat([self.train_delta_l2.to(torch.float64), self.cross_delta_l2.to(torch.float64)])

    def attack_labels(self, y: torch.Tensor) -> torch.Tensor:
        """Per input of true label ``y``, the label the attack aims at (int64): ``target``, or
        ``(y + 1) mod C`` for all-to-all. A triggered input predicted so is an attack success."""
        if self.policy == LabelPolicy.ALL_TO_ALL.value and self.num_classes is None:
            raise ValueError("PoisonedData.num_classes is needed for all-to-all attack labels")
        return attack_labels(torch.as_tensor(y), self.target, self.num_classes or 0, self.policy)

    def counts_for_asr(self, y: torch.Tensor) -> torch.Tensor:
        """Which triggered inputs of true label ``y`` the ASR counts (bool): the non-target ones,
        or every input for all-to-all (where each class has its own attack label)."""
        return attack_success_mask(torch.as_tensor(y), self.target, self.policy)


def realised_l2(triggered: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """``||triggered_i - clean_i||_2`` per sample, float64."""
    return (triggered.to(torch.float64) - clean.to(torch.float64)).flatten(1).norm(dim=1)


def _with_rows(x_train, changed: list, rows: list):
    """The poisoned training set: a float tensor gets a patched copy; uint8 images keep their
    untouched rows as uint8 and the changed rows as the exact float32 values (``PatchedImages``)."""
    if isinstance(x_train, torch.Tensor):
        new_x = x_train.clone()
        for index, values in zip(changed, rows):
            new_x[index] = values
        return new_x
    if not changed:
        return x_train
    return PatchedImages(x_train, torch.cat(changed), torch.cat(rows).to(torch.float32))


TEST_L2_BATCH = 256  # images per batch when the realised test sizes are measured batch by batch


def _triggered_test_set(x_test, trigger: Trigger):
    """The triggered test set and its realised sizes: a float tensor is triggered whole; uint8
    images become :class:`TriggeredImages` (triggered per batch when read) and the sizes are
    measured batch by batch (each is a function of its image alone)."""
    if isinstance(x_test, torch.Tensor):
        triggered = trigger.apply(x_test)
        return triggered, realised_l2(triggered, x_test)
    triggered = TriggeredImages(x_test, trigger)
    sizes = [realised_l2(triggered.batch(part), x_test.batch(part))
             for part in (slice(s, s + TEST_L2_BATCH) for s in range(0, len(x_test), TEST_L2_BATCH))]
    return triggered, (torch.cat(sizes) if sizes else torch.zeros(0, dtype=torch.float64))


def unpoisoned(splits, target: int, name: str = "none") -> PoisonedData:
    """The ``PoisonedData`` of no attack: the clean sets, no trigger, every size 0."""
    return PoisonedData(
        x_train=splits.x_train,
        y_train=splits.y_train,
        poisoned_index=torch.zeros(0, dtype=torch.int64),
        train_delta_l2=torch.zeros(0, dtype=torch.float64),
        x_test_triggered=splits.x_test,
        test_delta_l2=torch.zeros(int(splits.x_test.shape[0]), dtype=torch.float64),
        target=int(target),
        name=name,
        num_classes=int(splits.num_classes),
    )


def poison(splits, settings, seed: int, context=None) -> PoisonedData:
    """Poison ``splits`` (a ``DatasetSplits``) with the attack ``settings`` (an ``AttackSettings``).

    The attack decides how (``settings.poison``; the default is ``poison_with_policy`` with the
    attack's trigger and label policy). ``context`` is the run's ``RunSettings`` for the attacks
    that train a model while poisoning (``label_consistent``); the others ignore it.
    """
    return settings.poison(splits, int(seed), context)


def _draw(candidates: torch.Tensor, count: int, generator: torch.Generator, what: str) -> torch.Tensor:
    if count > candidates.numel():
        raise ConfigError(
            f"attack.poison_rate asks for {count} {what} samples but only {candidates.numel()} training samples "
            "are eligible: lower attack.poison_rate" + (" or attack.cross_ratio" if what == "cross" else "")
        )
    order = torch.randperm(int(candidates.numel()), generator=generator)[:count]
    return candidates[order].sort().values


def poison_count(poison_rate: float, n_train: int) -> int:
    """How many training samples an attack poisons: ``round(poison_rate * n_train)``, half up."""
    return int(math.floor(float(poison_rate) * int(n_train) + 0.5))


@dataclass(frozen=True)
class PoisonExtras:
    """What some attacks add to poisoning: ``prepare_train(x, y)`` before the trigger
    (label-consistent's PGD), and WaNet's noise mode: ``cross(x, generator)`` applied to
    ``round(cross_ratio * count)`` further samples whose labels are kept."""

    prepare_train: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    cross: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
    cross_ratio: float = 0.0


def poison_with_policy(splits, trigger: Trigger, *, target: int, poison_rate: float, seed: int,
                       policy: LabelPolicy | str = LabelPolicy.ALL_TO_ONE, name: str | None = None,
                       extras: PoisonExtras | None = None) -> PoisonedData:
    """Poison ``splits`` (a ``DatasetSplits``) with ``trigger`` under ``policy``.

    :func:`poison_count` samples are drawn uniformly among ``poison_candidates`` with
    ``make_generator(seed, "poison")``; each becomes ``trigger.apply(prepare_train(x, y))`` (no
    ``prepare_train``: ``trigger.apply(x)``) with label ``attack_labels`` (``clean_label``: its own).
    With ``extras.cross`` (WaNet's noise mode), ``round(cross_ratio * count)`` further samples of any
    class outside the poisoned ones, drawn with ``make_generator(seed, "cross")``, become
    ``cross(x, make_generator(seed, "cross-noise"))`` with their labels kept. Every test input gets
    the trigger. Realised sizes are measured against the clean inputs, in float64. The arguments are
    checked by the same code as the attack options' settings (one-line ``attack.<key>`` errors).
    """
    policy = parse_policy(policy)
    extras = extras or PoisonExtras()
    prepare_train, cross = extras.prepare_train, extras.cross
    num_classes = int(splits.num_classes)
    target = check_int("attack.target", target, 0, num_classes - 1)
    check_range("attack.poison_rate", poison_rate, 0.0, 1.0, high_open=True)
    check_range("attack.cross_ratio", extras.cross_ratio, 0.0, None)
    x_train, y_train, x_test = splits.x_train, splits.y_train, splits.x_test
    n_train = int(y_train.shape[0])
    count = poison_count(poison_rate, n_train)
    poison_rate, cross_ratio = float(poison_rate), float(extras.cross_ratio)
    index = _draw(poison_candidates(y_train, target, policy), count, make_generator(seed, "poison"), "poisoned")
    new_y = y_train.clone()
    changed, rows = [], []
    train_l2 = torch.zeros(0, dtype=torch.float64)
    if count:
        source = x_train[index]
        if prepare_train is not None:
            source = prepare_train(source, y_train[index]).to(source.dtype)
        triggered = trigger.apply(source)
        changed.append(index)
        rows.append(triggered)
        if policy is not LabelPolicy.CLEAN_LABEL:
            new_y[index] = attack_labels(y_train[index], target, num_classes, policy)
        train_l2 = realised_l2(triggered, x_train[index])
    cross_index = torch.zeros(0, dtype=torch.int64)
    cross_l2 = torch.zeros(0, dtype=torch.float64)
    n_cross = int(math.floor(cross_ratio * count + 0.5)) if cross is not None else 0
    if n_cross:
        free = torch.ones(n_train, dtype=torch.bool)
        free[index] = False
        cross_index = _draw(torch.nonzero(free).flatten(), n_cross, make_generator(seed, "cross"), "cross")
        noised = cross(x_train[cross_index], make_generator(seed, "cross-noise"))
        changed.append(cross_index)
        rows.append(noised)
        cross_l2 = realised_l2(noised, x_train[cross_index])
    new_x = _with_rows(x_train, changed, rows)
    x_test_triggered, test_l2 = _triggered_test_set(x_test, trigger)
    return PoisonedData(
        x_train=new_x,
        y_train=new_y,
        poisoned_index=index,
        train_delta_l2=train_l2,
        x_test_triggered=x_test_triggered,
        test_delta_l2=test_l2,
        target=int(target),
        name=name or trigger.name,
        trigger=trigger,
        policy=policy.value,
        cross_index=cross_index,
        cross_delta_l2=cross_l2,
        num_classes=num_classes,
    )
