"""``sigma_optimiser=released``: COMPATIBILITY ONLY, the update rule the authors' released code
applies (docs/METHOD.md section 6, defect 1). The model output is detached, so each step is
``sigma += lr * |Phi^-1(clip(p_A))|`` with ``p_A`` the top mean probability under the current
sigma: it ignores the model's gradient and sigma only grows. For comparisons, never the default."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .sga import SGASettings


@dataclass
class ReleasedSettings(SGASettings):
    """The released code's model-ignoring SGA update (every other knob as ``sga``)."""

    def check(self, run) -> None:
        super().check(run)
        if self.objective != "paper":
            self.fail("objective", f"must be paper for the released rule (it ignores the objective); got "
                                   f"{self.objective!r}: use sigma_optimiser=sga_joint for the sound objective")

    def method_name(self) -> str:
        return "cert-ssb-released" + ("-floor" if self.sigma_train_floor is not None else "")

    def step(self, model, xb: torch.Tensor, sigma: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        from .proxy import smoothed_probs

        with torch.no_grad():
            p_a = smoothed_probs(model, xb, sigma, eps).max(dim=1).values.clamp(self.clip_low, self.clip_high)
            return self.lr * torch.special.ndtri(p_a).abs()
