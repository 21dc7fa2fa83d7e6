"""What every attack option declares: the poisoning rate and target class, its trigger, its label
policy, and how it poisons a dataset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from omegaconf import MISSING

from certssb.config import Option

from .policy import LabelPolicy


@dataclass
class AttackSettings(Option):
    """Base of the ``attack`` options: ``round(poison_rate * n_train)`` training samples chosen by
    the attack's label policy get the trigger and the policy's label (``target`` for all-to-one);
    every test input gets the trigger.

    A subclass implements :meth:`trigger` (None: no poisoning) and adds its own fields; it
    overrides :meth:`label_policy` (clean-label, all-to-all), :meth:`poison_extras` when poisoning
    needs more than the trigger (WaNet's noise mode, label-consistent's PGD), or :meth:`poison`.
    """

    config_group: ClassVar[str] = "attack"
    poison_rate: float = MISSING
    target: int = MISSING

    def trigger(self, image_shape: tuple[int, int, int]):
        """The trigger for images of ``image_shape = (C, H, W)``, or None (no attack)."""
        raise NotImplementedError

    def label_policy(self) -> LabelPolicy:
        """Which samples are poisoned and which label they and the ASR aim at (default all-to-one)."""
        return LabelPolicy.ALL_TO_ONE

    def poison(self, splits, seed: int, context=None):
        """The poisoned data (``PoisonedData``) of ``splits`` at run seed ``seed``.

        Default: ``poison_with_policy`` with :meth:`trigger` and :meth:`label_policy`.
        ``context`` is the run's ``RunSettings`` (model and ensemble settings) for attacks that
        train a model while poisoning; None elsewhere (tests, tools).
        """
        from .build import build_trigger
        from .poisoning import poison_with_policy, unpoisoned

        trigger = build_trigger(self, tuple(splits.x_train.shape[1:]), splits.name)
        if trigger is None:
            return unpoisoned(splits, self.target, self.name)
        return poison_with_policy(splits, trigger, target=self.target, poison_rate=self.poison_rate, seed=seed,
                                  policy=self.label_policy(), name=self.name,
                                  extras=self.poison_extras(splits, trigger, seed, context))

    def poison_extras(self, splits, trigger, seed: int, context):
        """What poisoning adds to the trigger (:class:`certssb.attack.poisoning.PoisonExtras`:
        ``prepare_train``, WaNet's ``cross`` and ``cross_ratio``); None by default."""
        return None

    def check(self, run) -> None:
        self.require_range("poison_rate", 0.0, 1.0, high_open=True)
        n_classes = run.dataset.num_classes()
        if not 0 <= self.target < n_classes:
            self.fail("target", f"must be a class index in [0, {n_classes - 1}] (after dataset.classes remapping); got {self.target}")
        self.trigger(run.dataset.input_shape)  # shape-dependent checks (patch size, positions)
