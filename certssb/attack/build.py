"""``build_trigger``: the trigger an attack's settings describe, for one image shape."""

from __future__ import annotations

from certssb.errors import ConfigError

from .base import Trigger


def build_trigger(settings, image_shape, dataset_name: str | None = None) -> Trigger | None:
    """The trigger of the attack ``settings`` for images ``image_shape = (C, H, W)``; None for no attack.

    Every trigger is a pure function of the settings and the image shape: none depends on the run
    seed (RAB's patterns are fixed across runs). ``dataset_name`` only labels messages.
    """
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        where = f" of dataset {dataset_name}" if dataset_name else ""
        raise ConfigError(f"image shape {shape}{where} is not (C, H, W): triggers need image data")
    return settings.trigger(shape)
