"""The test sets a run certifies: clean, and the triggered inputs in the two conventions.

- ``clean``: the clean test set with its labels;
- ``triggered_all``: every input triggered, labelled with the target (the released code's convention);
- ``triggered``: non-target inputs triggered, with their TRUE labels (RAB's convention), a subset
  of ``triggered_all`` that reads its votes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class TestSet:
    """Inputs certified together: ``indices`` index the test set (they key the test noise)."""

    name: str
    x: torch.Tensor
    labels: np.ndarray
    indices: np.ndarray
    sigmas: torch.Tensor


def predicted_sets(splits, poisoned, sig_clean: torch.Tensor, sig_trig: torch.Tensor) -> dict[str, TestSet]:
    """The sets the members predict on: ``clean`` and ``triggered_all``."""
    y_test = splits.y_test.numpy()
    all_idx = np.arange(len(y_test))
    return {
        "clean": TestSet("clean", splits.x_test, y_test, all_idx, sig_clean),
        "triggered_all": TestSet("triggered_all", poisoned.x_test_triggered, np.full_like(y_test, poisoned.target),
                                 all_idx, sig_trig),
    }


def rab_triggered(splits, poisoned, sig_trig: torch.Tensor) -> TestSet:
    """RAB's convention: non-target inputs with the trigger and their TRUE labels."""
    y_test = splits.y_test.numpy()
    non_target = np.arange(len(y_test))[y_test != poisoned.target]
    return TestSet("triggered", poisoned.x_test_triggered[non_target], y_test[non_target], non_target,
                   sig_trig[non_target])
