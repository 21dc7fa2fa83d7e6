"""What every model option declares: how to build a fresh network for an input shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from certssb.config import Option


@dataclass
class ModelSettings(Option):
    """Base of the ``model`` options: :meth:`build` returns a fresh ``nn.Module`` mapping float
    inputs ``[n, C, H, W]`` to logits ``[n, num_classes]``, deterministic under ``torch.manual_seed``."""

    config_group: ClassVar[str] = "model"
    min_hw: ClassVar[int] = 1  # smallest image height/width the network accepts

    def build(self, input_shape: tuple[int, int, int], num_classes: int):
        raise NotImplementedError

    def check(self, run) -> None:
        _, h, w = run.dataset.input_shape
        if min(h, w) < self.min_hw:
            self.fail("name", f"{self.name} needs images of at least {self.min_hw}x{self.min_hw}, got {h}x{w}; "
                              "use model=digits_cnn or model=mlp")
