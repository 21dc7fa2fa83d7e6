"""What every attack option declares: the poisoning rate and target class, and its trigger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from omegaconf import MISSING

from certssb.config import Option


@dataclass
class AttackSettings(Option):
    """Base of the ``attack`` options: ``poison_rate`` of the non-target training samples get the
    trigger and the ``target`` label; every test input gets the trigger.

    A subclass implements :meth:`trigger` (None: no poisoning) and adds its own fields.
    """

    group: ClassVar[str] = "attack"
    poison_rate: float = MISSING
    target: int = MISSING

    def trigger(self, image_shape: tuple[int, int, int]):
        """The trigger for images of ``image_shape = (C, H, W)``, or None (no attack)."""
        raise NotImplementedError

    def check(self, run) -> None:
        self.require_range("poison_rate", 0.0, 1.0, high_open=True)
        n_classes = run.dataset.num_classes()
        if not 0 <= self.target < n_classes:
            self.fail("target", f"must be a class index in [0, {n_classes - 1}] (after dataset.classes remapping); got {self.target}")
        self.trigger(run.dataset.input_shape)  # shape-dependent checks (patch size, positions)
