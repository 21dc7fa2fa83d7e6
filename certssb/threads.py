"""torch CPU threads for a run (``cpu_threads`` in conf/config.yaml)."""

from __future__ import annotations

import torch

SMALL_MODEL_PARAMS = 200_000


def set_cpu_threads(setting, factory, device: torch.device) -> None:
    """``auto``: one torch thread for small models on the CPU (thread hand-offs cost more than
    they save there); an integer sets the count; ``null`` keeps torch's default."""
    if device.type != "cpu" or setting is None:
        return
    if str(setting) == "auto":
        n_params = sum(p.numel() for p in factory().parameters())
        if n_params < SMALL_MODEL_PARAMS:
            torch.set_num_threads(1)
        return
    torch.set_num_threads(max(1, int(setting)))
