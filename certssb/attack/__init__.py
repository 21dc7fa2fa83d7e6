"""Backdoor attacks (config group ``attack``; one ``conf/attack/<name>.yaml`` and settings class each):

- ``onepixel``, ``fourpixel`` (``pixel.py``) and ``blending`` (``blending.py``): RAB's additive
  triggers of L2 size ``delta`` (one or four pixels; a seed-0 Gaussian pattern);
- ``badnets``: a k x k patch replacing pixels, all-to-one or all-to-all;
- ``blended``: the alpha blend of a pattern image (Chen et al.; not RAB's ``blending``);
- ``wanet``: a fixed smooth warping field, with its noise mode;
- ``sig``: a sinusoid on target-class training images, clean-label;
- ``label_consistent``: PGD-hardened target-class images with a checkerboard patch, clean-label;
- ``none``: no poisoning.

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
