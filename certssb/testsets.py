"""The test sets a run certifies: clean, and the triggered inputs in the two conventions.

- ``clean``: the clean test set with its labels;
- ``triggered_all``: every input triggered, labelled with the attack's label (the released code's
  convention): the target, or ``(y + 1) mod C`` for all-to-all (``PoisonedData.attack_labels``);
- ``triggered``: the inputs the ASR counts (non-target ones; every one for all-to-all) triggered,
  with their TRUE labels (RAB's convention), a subset of ``triggered_all`` that reads its votes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from certssb.dataset.batched import BatchedImages


@dataclass
class TestSet:
    """Inputs certified together: ``indices`` index the test set (they key the test noise);
    ``x`` is images read per batch (``BatchedImages``) or a float tensor."""

    __test__ = False  # a data class, not a pytest test class (its name starts with "Test")
    name: str
    x: torch.Tensor | BatchedImages
    labels: np.ndarray
    indices: np.ndarray
    sigmas: torch.Tensor


def predicted_sets(splits, poisoned, sig_clean: torch.Tensor, sig_trig: torch.Tensor) -> dict[str, TestSet]:
    """The sets the members predict on: ``clean`` and ``triggered_all``."""
    y_test = splits.y_test.numpy()
    all_idx = np.arange(len(y_test))
    return {
        "clean": TestSet("clean", splits.x_test, y_test, all_idx, sig_clean),
        "triggered_all": TestSet("triggered_all", poisoned.x_test_triggered,
                                 poisoned.attack_labels(splits.y_test).numpy().astype(y_test.dtype), all_idx, sig_trig),
    }


def rab_triggered(splits, poisoned, sig_trig: torch.Tensor) -> TestSet:
    """RAB's convention: the inputs the ASR counts (``PoisonedData.counts_for_asr``: non-target ones,
    every one for all-to-all) with the trigger and their TRUE labels."""
    y_test = splits.y_test.numpy()
    counted = np.arange(len(y_test))[poisoned.counts_for_asr(splits.y_test).numpy()]
    x = poisoned.x_test_triggered
    x = x[torch.from_numpy(counted)] if isinstance(x, torch.Tensor) else x.subset(torch.from_numpy(counted))
    return TestSet("triggered", x, y_test[counted], counted,
                   sig_trig[counted])
