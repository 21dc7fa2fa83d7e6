"""Backdoor attacks (config group ``attack``): RAB's one-pixel, four-pixel and blending triggers,
BadNets, and ``none``.

- ``build_trigger(cfg, image_shape, dataset_name, seed) -> Trigger | None``
- ``poison(splits, cfg, seed) -> PoisonedData`` (poisoned train set, triggered test set, realised
  L2 sizes and ``joint_l2()``).
"""

from .badnets import BadNetsTrigger
from .base import AdditiveTrigger, Trigger
from .build import ATTACKS, build_trigger
from .pixel import default_positions
from .poisoning import PoisonedData, poison

__all__ = [
    "ATTACKS",
    "AdditiveTrigger",
    "BadNetsTrigger",
    "PoisonedData",
    "Trigger",
    "build_trigger",
    "default_positions",
    "poison",
]
