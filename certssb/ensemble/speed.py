"""The speed switches of the vectorised groups (``conf/ensemble/_training.yaml``), resolved.

* ``engine`` (``ensemble.vectorise``): ``vmap`` (``vectorised.stack_models``, the reference) or
  ``grouped`` (``grouped.group_models``: the models side by side along the channel axis).
* ``adam``: ``default`` (``torch.optim.Adam``'s own choice: multi-tensor on CUDA, one tensor at a
  time on the CPU), ``foreach`` (multi-tensor) or ``fused`` (one fused kernel over the stacked
  parameters, where the device supports it). Adam is elementwise, so every choice is each model's
  own Adam; they differ by float rounding.
* ``pad``: every step of a group has one shape (``masking.py``).
* ``compile``: ``eager`` | ``inductor`` (``torch.compile`` of the group's forward and loss) |
  ``cudagraphs`` (the whole step, forward, backward and Adam, captured once and replayed;
  ``group_trainer.GraphedStep``).

With every switch at its default (:attr:`Speed.reference`) the group trains through
``vectorised.fit_group``, the path the checkpoints of earlier runs came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from certssb.ensemble.precision import FP32, Precision

ENGINES = ("vmap", "grouped")


@dataclass(frozen=True)
class Speed:
    engine: str = "vmap"
    adam: str = "default"
    pad: bool = False
    compile: str = "eager"

    @classmethod
    def of(cls, ens, engine: str) -> "Speed":
        """The switches of ``ens`` (an ``EnsembleSettings``) for the chosen ``engine``."""
        return cls(engine=engine, adam=str(ens.adam), pad=bool(ens.pad_batches), compile=str(ens.compile))

    @property
    def reference(self) -> bool:
        """Every switch at its default: the reference vectorised path."""
        return self == Speed()

    def describe(self) -> dict:
        return asdict(self)

    def label(self) -> str:
        """A short name for logs and the GPU check, e.g. ``grouped+fused+pad``."""
        parts = [self.engine]
        if self.adam != "default":
            parts.append(self.adam)
        if self.pad:
            parts.append("pad")
        if self.compile != "eager":
            parts.append(self.compile)
        return "+".join(parts)


def make_adam(params: list[torch.Tensor], lr: float, adam: str = "default", capturable: bool = False):
    """``torch.optim.Adam`` over ``params`` with the implementation ``adam`` asks for
    (``capturable``: its step counters on the device, for CUDA graphs)."""
    kw = {}
    if adam == "foreach":
        kw["foreach"] = True
    elif adam == "fused":
        kw["fused"] = True
    if capturable:
        kw["capturable"] = True
    return torch.optim.Adam(params, lr=lr, **kw)


@dataclass(frozen=True)
class FitSpec:
    """How models train: epochs, batch size, learning rate, device, precision and the speed switches
    (the one-model reference path and ``vectorised.fit_group`` read all but the switches)."""

    epochs: int
    batch_size: int
    lr: float
    device: torch.device
    precision: Precision = FP32
    speed: Speed = field(default_factory=Speed)
