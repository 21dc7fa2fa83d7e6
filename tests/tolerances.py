"""Tolerances for comparing models trained on different code paths (loop vs vmap, layouts).

Two code paths sum the same float32 terms in different orders (other kernels, other groupings),
so their gradients differ by rounding: about ``n_terms * 2**-24`` of the gradient's scale. How
far that carries depends on how many steps follow, so equivalence is asserted after ONE Adam
step, where it is deterministic and bounded:

* Adam's first step moves a parameter by ``lr * g / (|g| + eps)`` (bias-corrected moments
  ``m = g``, ``v = g**2``). Where ``|g|`` is large against its rounding, the step agrees to far
  below float32 resolution, so the parameters agree to their own rounding (a few ulps, < 1e-7
  for |p| < 1); ``PARAM_ATOL = 1e-6`` leaves a margin of 10x.
* Where ``|g|`` is itself within rounding of zero (cancellation, ``eps = 1e-8``), the normalised
  step ``g / (|g| + eps)`` is ill-conditioned and may differ by up to its whole range, ``2 lr``.
  Such entries are rare (measured: at most 3 of 37,000 weights of a conv layer); at most
  ``ILL_CONDITIONED_FRACTION`` of the entries may exceed ``PARAM_ATOL``, none may exceed
  ``2 lr`` plus rounding.

A wrong vectorised path (another member's gradient, a skipped step, other noise) moves almost
every entry by ~``lr`` and fails the fraction check.

After several epochs the differences are chaotic (they grow with every step and differ between
CPUs: 2e-3 measured after one epoch of a BatchNorm network), so multi-epoch comparisons look at
predictions instead (see ``assert_predictions_agree``).
"""

from __future__ import annotations

import numpy as np
import torch

PARAM_ATOL = 1e-6
ILL_CONDITIONED_FRACTION = 1e-3


def assert_one_adam_step_close(a: list[dict], b: list[dict], lr: float) -> None:
    """State dicts after one Adam step from the same init: see the module docstring."""
    n_total = n_far = 0
    for sa, sb in zip(a, b, strict=True):
        assert sa.keys() == sb.keys()
        for k in sa:
            ta, tb = sa[k].double(), sb[k].double()
            assert ta.shape == tb.shape, k
            if not sa[k].is_floating_point():  # counters (BatchNorm's num_batches_tracked)
                assert torch.equal(sa[k], sb[k]), k
                continue
            diff = (ta - tb).abs()
            assert float(diff.max()) <= 2 * lr + PARAM_ATOL, (k, float(diff.max()))
            n_far += int((diff > PARAM_ATOL + 1e-6 * tb.abs()).sum())
            n_total += diff.numel()
    assert n_far <= max(1, ILL_CONDITIONED_FRACTION * n_total), f"{n_far} of {n_total} entries differ"


def assert_predictions_agree(pa, pb, min_agreement: float = 0.95, max_mean_score_diff: float = 0.02) -> None:
    """Two ensembles trained on different code paths for several epochs predict alike.

    ``pa``/``pb`` are MemberVotes of the same members and inputs. Training drift between paths
    is chaotic, so only robust quantities are compared: the ensemble's predicted class agrees on
    at least ``min_agreement`` of the inputs and the mean absolute difference of the averaged
    scores is at most ``max_mean_score_diff``. (Two independently seeded ensembles of the test
    data differ far more: the tests check that too, so these bounds can fail.)
    """
    sa, sb = pa.prob_sum / pa.n_members, pb.prob_sum / pb.n_members
    agreement = float(np.mean(sa.argmax(1) == sb.argmax(1)))
    assert agreement >= min_agreement, agreement
    mean_diff = float(np.abs(sa - sb).mean())
    assert mean_diff <= max_mean_score_diff, mean_diff
