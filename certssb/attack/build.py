"""``build_trigger``: the trigger an ``attack`` config describes, for one image shape."""

from __future__ import annotations

from certssb.errors import ConfigError

from ._config import cfg_get
from .badnets import build_badnets_trigger
from .base import Trigger
from .blending import build_blending_trigger
from .pixel import build_pixel_trigger

ATTACKS = ("none", "onepixel", "fourpixel", "blending", "badnets")
# The attack keys each trigger reads; name, poison_rate and target are read for every attack.
TRIGGER_KEYS = {
    "none": (),
    "onepixel": ("delta", "positions"),
    "fourpixel": ("delta", "positions"),
    "blending": ("delta", "pattern_seed"),
    "badnets": ("patch_size", "corner", "color", "pattern_seed"),
}


def effective_attack(attack: dict) -> dict:
    """The keys of a plain attack config that change its poisoning (others are ignored by it)."""
    keys = ("name", "poison_rate", "target", *TRIGGER_KEYS.get(attack.get("name"), tuple(attack)))
    return {k: attack[k] for k in keys if k in attack}


def attack_name(cfg) -> str:
    name = cfg_get(cfg, "name", None)
    if name not in ATTACKS:
        raise ConfigError(f"attack.name={name!r} is unknown: use one of {', '.join(ATTACKS)}")
    return name


def build_trigger(cfg, image_shape, dataset_name: str | None = None, seed: int | None = None) -> Trigger | None:
    """The trigger of ``cfg.name`` for images ``image_shape = (C, H, W)``; None for ``none``.

    Every trigger is a pure function of the config and the image shape: none depends on the run
    ``seed`` (RAB's patterns are fixed across runs), which is accepted for interface stability.
    ``dataset_name`` only labels messages; default positions follow the image shape (see
    ``certssb.attack.pixel``).
    """
    name = attack_name(cfg)
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        where = f" of dataset {dataset_name}" if dataset_name else ""
        raise ConfigError(f"image shape {shape}{where} is not (C, H, W): triggers need image data")
    if name == "none":
        return None
    if name in ("onepixel", "fourpixel"):
        return build_pixel_trigger(cfg, name, shape)
    if name == "blending":
        return build_blending_trigger(cfg, shape)
    return build_badnets_trigger(cfg, shape)
