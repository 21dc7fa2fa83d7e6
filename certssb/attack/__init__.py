"""Backdoor attacks (config group ``attack``): RAB's one-pixel, four-pixel and blending triggers,
BadNets, and ``none``.

- ``build_trigger(settings, image_shape, dataset_name) -> Trigger | None``
- ``poison(splits, settings, seed) -> PoisonedData`` (poisoned train set, triggered test set, realised
  L2 sizes and ``joint_l2()``).
"""

from .badnets import BadNetsTrigger
from .base import AdditiveTrigger, Trigger
from .build import build_trigger
from .pixel import default_positions
from .poisoning import PoisonedData, poison

__all__ = [
    "AdditiveTrigger",
    "BadNetsTrigger",
    "PoisonedData",
    "Trigger",
    "build_trigger",
    "default_positions",
    "poison",
]
