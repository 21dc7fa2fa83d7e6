"""Label-consistent backdoor (Turner, Tsipras & Madry 2019, "Label-Consistent Backdoor Attacks").

Only target-class training samples are poisoned and their labels stay unchanged
(``LabelPolicy.CLEAN_LABEL``). Each is first made hard to learn by an untargeted L-inf PGD
perturbation against a model trained on clean data (``pgd_harden``; the paper's adversarial
variant), then the trigger is stamped on: a ``patch_size x patch_size`` black-and-white
checkerboard in the bottom-right corner, or in all four corners (the paper's four-corner
variant; the same pattern in each corner, not mirrored). ``amplitude`` < 1 blends the patch in
(``(1 - a) x + a * patch`` on the patch pixels): the paper's reduced-visibility triggers.
Test inputs get the trigger only.

With ``attack=label_consistent`` the model is trained inside the poisoning step
(:func:`train_clean_model`): the run's model (``model``) trained on the CLEAN training set without
noise by ``certssb.ensemble.train_single`` at sigma 0 with the run's ensemble training settings
(``attack.clean_epochs`` epochs, null = ``ensemble.epochs``), seeded by the run seed under the key
``label-consistent-clean``. It is a pure function of the settings and the seed, and every
fingerprint that the poisoned data feeds (sigmas, members) already covers the model and training
settings. ``eps: 0`` or ``steps: 0`` skips it (no hardening).

The realised training size of a poisoned sample is ``||trigger(pgd(x)) - x||_2``: the PGD
perturbation is part of what the attacker changed, so it counts in ``attack_joint_l2``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from omegaconf import MISSING
from torch import nn

from certssb.dataset.batched import as_images
from certssb.errors import ConfigError

from .base import Trigger
from .checks import check_choice, check_int, check_real
from .policy import LabelPolicy
from .settings import AttackSettings

log = logging.getLogger("certssb")

CORNERS = ("bottom_right", "four")


def checkerboard_patch(channels: int, size: int) -> torch.Tensor:
    """``[C, size, size]`` with 1 where ``(row + col)`` is even, 0 elsewhere (white top-left)."""
    idx = torch.arange(size)
    board = ((idx.view(-1, 1) + idx.view(1, -1)) % 2 == 0).to(torch.float32)
    return board.expand(channels, size, size).clone()


class LabelConsistentTrigger(Trigger):
    """Stamps a checkerboard patch (blended with ``amplitude``) on one or four corners."""

    name = "label_consistent"

    def __init__(self, image_shape, patch_size: int = 3, corners: str = "bottom_right", amplitude: float = 1.0):
        super().__init__(image_shape)
        c, h, w = self.image_shape
        k = int(patch_size)
        patch = checkerboard_patch(c, k)
        self.mask = torch.zeros(c, h, w, dtype=torch.float32)
        self.pattern = torch.zeros(c, h, w, dtype=torch.float32)
        spots = [(h - k, w - k)] if corners == "bottom_right" else [(0, 0), (0, w - k), (h - k, 0), (h - k, w - k)]
        for r, col in spots:
            self.mask[:, r:r + k, col:col + k] = 1.0
            self.pattern[:, r:r + k, col:col + k] = patch
        self.patch_size, self.corners, self.amplitude = k, corners, float(amplitude)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        weight = (self.amplitude * self.mask).to(device=x.device, dtype=x.dtype)
        return x + weight * (self.pattern.to(device=x.device, dtype=x.dtype) - x)

    def __repr__(self) -> str:
        return (f"LabelConsistentTrigger(patch_size={self.patch_size}, corners={self.corners!r}, "
                f"amplitude={self.amplitude}, image_shape={self.image_shape})")


def pgd_harden(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 8 / 255, steps: int = 10,
               step_size: float = 2 / 255, batch_size: int = 256) -> torch.Tensor:
    """Untargeted L-inf PGD on ``model`` (cross-entropy of the TRUE label ascended), no random start.

    Every step moves by ``step_size * sign(grad)``, then projects onto the ``eps`` ball around
    ``x`` and onto [0, 1]. Deterministic given the model. Runs on the model's device in batches;
    returns a CPU float32 tensor shaped like ``x``. The model's mode and weights are left as they were.
    """
    if x.shape[0] == 0:
        return x.clone()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, x.shape[0], batch_size):
            xb = x[start:start + batch_size].to(device, torch.float32)
            yb = y[start:start + batch_size].to(device)
            adv = xb.clone()
            for _ in range(int(steps)):
                adv.requires_grad_(True)
                loss = F.cross_entropy(model(adv), yb)
                (grad,) = torch.autograd.grad(loss, adv)
                adv = adv.detach() + step_size * grad.sign()
                adv = torch.minimum(torch.maximum(adv, xb - eps), xb + eps).clamp_(0.0, 1.0)
            out.append(adv.detach().to("cpu", torch.float32))
    finally:
        model.train(was_training)
    return torch.cat(out)


def check_label_consistent(image_shape, eps: float, steps: int, step_size: float, patch_size: int,
                           corners: str, amplitude: float) -> None:
    """One-line ``ConfigError`` for each knob out of range."""
    _, h, w = (int(v) for v in image_shape)
    check_real("eps", eps, 0.0, 1.0)
    check_int("steps", steps, 0)
    check_real("step_size", step_size, 0.0, 1.0, low_open=True)
    check_choice("corners", corners, CORNERS)
    check_int("patch_size", patch_size, 1, min(h, w) if corners == "bottom_right" else min(h, w) // 2)
    check_real("amplitude", amplitude, 0.0, 1.0, low_open=True)


def label_consistent_trigger(image_shape, patch_size: int = 3, corners: str = "bottom_right",
                             amplitude: float = 1.0, eps: float = 8 / 255, steps: int = 10,
                             step_size: float = 2 / 255) -> LabelConsistentTrigger:
    """The label-consistent trigger for images ``(C, H, W)`` (the PGD knobs are checked here too).

    Knobs (defaults from Turner et al. 2019, PGD from Madry et al. 2018's CIFAR setting):

    - ``eps: 0.031372549`` (8/255): L-inf budget of the hardening perturbation, in [0, 1] units;
      check: ``attack.eps must be in [0, 1]`` (0 disables hardening).
    - ``steps: 10``: PGD steps; check: an integer >= 0.
    - ``step_size: 0.007843137`` (2/255): PGD step; check: in (0, 1].
    - ``patch_size: 3``: checkerboard size; check: 1..min(H, W) (half that for ``four`` corners).
    - ``corners: bottom_right``: ``bottom_right`` or ``four``; check: one of these.
    - ``amplitude: 1.0``: trigger visibility (1 = the fully visible pattern); check: in (0, 1].

    Poisoning: clean-label (``LabelPolicy.CLEAN_LABEL``) with
    ``PoisonExtras(prepare_train=label_consistent_prepare(model, eps, steps, step_size))``, where ``model`` is
    trained on the CLEAN training set (e.g. the undefended reference trained without poisoning).
    """
    check_label_consistent(image_shape, eps, steps, step_size, patch_size, corners, amplitude)
    return LabelConsistentTrigger(image_shape, int(patch_size), corners, float(amplitude))


def label_consistent_prepare(model: nn.Module, eps: float = 8 / 255, steps: int = 10,
                             step_size: float = 2 / 255) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``prepare_train(x, y)`` for ``poison_with_policy``: the PGD-hardened copies of ``x``."""

    def prepare(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return pgd_harden(model, x, y, float(eps), int(steps), float(step_size))

    return prepare


def train_clean_model(splits, context, seed: int, epochs: int | None = None) -> nn.Module:
    """The run's model trained on the CLEAN training set of ``splits`` without noise (sigma 0).

    ``context`` is the run's ``RunSettings``: its ``model`` builds the network and its ``ensemble``
    gives the training settings and device (``epochs`` replaces ``ensemble.epochs`` when given).
    """
    if context is None:
        raise ConfigError("attack=label_consistent trains a model on the clean data: call "
                          "poison(splits, settings, seed, context) with the run's settings as context")
    from certssb.ensemble import resolve_device, train_single
    from certssb.model import model_factory

    factory = model_factory(context.model, splits.input_shape, splits.num_classes)
    ensemble = dataclasses.replace(context.ensemble, epochs=int(epochs or context.ensemble.epochs))
    device = resolve_device(ensemble.device)
    log.info("label_consistent: training %s on the clean data (%d epochs) for the PGD step",
             context.model.name, ensemble.epochs)
    model = train_single(factory, splits.x_train, splits.y_train, 0.0, ensemble, seed, "label-consistent-clean", device)
    with torch.no_grad():
        pred = torch.cat([model(xb.to(device)).argmax(1).cpu() for xb in as_images(splits.x_test).batches(1024)])
    log.info("label_consistent: clean model test accuracy %.3f", float((pred == splits.y_test).float().mean()))
    return model


@dataclass
class LabelConsistentSettings(AttackSettings):
    """``attack=label_consistent``: knobs as in :func:`label_consistent_trigger`, plus
    ``clean_epochs`` (null or >= 1) of the clean model; clean-label poisoning (``poison_rate`` of
    the training set, taken from the target class: at most its share, else a one-line error)."""

    patch_size: int = MISSING
    corners: str = MISSING
    amplitude: float = MISSING
    eps: float = MISSING
    steps: int = MISSING
    step_size: float = MISSING
    clean_epochs: Optional[int] = MISSING

    def check(self, run) -> None:
        check_label_consistent(run.dataset.input_shape, self.eps, self.steps, self.step_size, self.patch_size,
                               self.corners, self.amplitude)
        if self.clean_epochs is not None and self.clean_epochs < 1:
            self.fail("clean_epochs", f"must be null or an integer >= 1; got {self.clean_epochs}")
        super().check(run)

    def label_policy(self) -> LabelPolicy:
        return LabelPolicy.CLEAN_LABEL

    def trigger(self, image_shape):
        return label_consistent_trigger(image_shape, self.patch_size, self.corners, self.amplitude, self.eps,
                                        self.steps, self.step_size)

    def poison_extras(self, splits, trigger, seed: int, context):
        from .poisoning import PoisonExtras, poison_count

        if poison_count(self.poison_rate, splits.y_train.shape[0]) == 0 or self.eps == 0 or self.steps == 0:
            return None
        model = train_clean_model(splits, context, seed, self.clean_epochs)
        return PoisonExtras(prepare_train=label_consistent_prepare(model, self.eps, self.steps, self.step_size))
