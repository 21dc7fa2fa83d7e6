"""The ``ensemble`` group's settings: N members, each trained with its own fixed noise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, List, Optional

from omegaconf import MISSING

from certssb.config import Option

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
VECTORISE = ("auto", "true", "false")


@dataclass
class EnsembleSettings(Option):
    config_group: ClassVar[str] = "ensemble"
    n_members: int = MISSING
    epochs: int = MISSING
    batch_size: int = MISSING
    lr: float = MISSING
    vectorise: Any = MISSING
    group_size: Optional[int] = MISSING
    eval_batch_size: int = MISSING
    device: str = MISSING
    precision: str = MISSING
    member_range: Optional[List[int]] = MISSING
    checkpoint_dir: Optional[str] = MISSING
    deterministic: bool = MISSING

    def check(self, run) -> None:
        for key in ("n_members", "epochs", "batch_size", "eval_batch_size"):
            self.require_range(key, 1, None)
        self.require_range("lr", 0.0, None, low_open=True)
        self.require_choice("device", DEVICES)
        self.require_choice("precision", PRECISIONS)
        if str(self.vectorise).lower() not in VECTORISE:
            self.fail("vectorise", f"must be one of {', '.join(VECTORISE)}; got {self.vectorise!r}")
        if self.group_size is not None and self.group_size < 1:
            self.fail("group_size", f"must be null or >= 1; got {self.group_size}")
        rng = self.member_range
        if rng is not None and (len(rng) != 2 or not 0 <= rng[0] < rng[1] <= self.n_members):
            self.fail("member_range", "must be [start, stop] with 0 <= start < stop <= ensemble.n_members "
                                      f"({self.n_members}); got {list(rng)}")
