"""Label-consistent backdoor (Turner, Tsipras & Madry 2019, "Label-Consistent Backdoor Attacks").

Only target-class training samples are poisoned and their labels stay unchanged
(``LabelPolicy.CLEAN_LABEL``). Each is first made hard to learn by an untargeted L-inf PGD
perturbation against a model trained on clean data (``pgd_harden``; the paper's adversarial
variant), then the trigger is stamped on: a ``patch_size x patch_size`` black-and-white
checkerboard in the bottom-right corner, or in all four corners (the paper's four-corner
variant; the same pattern in each corner, not mirrored). ``amplitude`` < 1 blends the patch in
(``(1 - a) x + a * patch`` on the patch pixels): the paper's reduced-visibility triggers.
Test inputs get the trigger only.

The realised training size of a poisoned sample is ``||trigger(pgd(x)) - x||_2``: the PGD
perturbation is part of what the attacker changed, so it counts in ``attack_joint_l2``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .base import Trigger
from .checks import check_choice, check_int, check_real

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
    ``prepare_train=label_consistent_prepare(model, eps, steps, step_size)``, where ``model`` is
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
