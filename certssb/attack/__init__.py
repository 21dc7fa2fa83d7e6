"""Backdoor attacks (config group ``attack``): RAB's one-pixel, four-pixel and blending triggers,
BadNets (all-to-one or all-to-all), Blended, WaNet, SIG, label-consistent, and ``none``.

- ``build_trigger(settings, image_shape, dataset_name) -> Trigger | None``
- ``poison(splits, settings, seed, context=None) -> PoisonedData`` (poisoned train set, triggered
  test set, realised L2 sizes, ``joint_l2()`` and the attack's labels ``attack_labels(y)``); the
  attack's settings decide how (``AttackSettings.poison``).
- ``poison_with_policy``: the same for an explicit trigger and ``LabelPolicy``.
"""

from .badnets import BadNetsTrigger
from .base import AdditiveTrigger, Trigger
from .build import build_trigger
from .pixel import default_positions
from .poisoning import PoisonedData, poison, poison_with_policy
from .policy import LabelPolicy

__all__ = [
    "AdditiveTrigger",
    "BadNetsTrigger",
    "LabelPolicy",
    "PoisonedData",
    "Trigger",
    "build_trigger",
    "default_positions",
    "poison",
    "poison_with_policy",
]
