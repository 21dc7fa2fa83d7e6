"""What every ``sigma_optimiser`` option provides: the run's noise levels and what the certificate
may assume about them (docs/METHOD.md sections 2, 3 and 7).

An option is one yaml (``conf/sigma_optimiser/<name>.yaml``) and one class that subclasses
:class:`SigmaOptimiserSettings` and owns its behaviour: its sigmas for the training set and both
test sets (:meth:`~SigmaOptimiserSettings.sigmas`), the ensembles it trains
(:meth:`~SigmaOptimiserSettings.ensembles`), how its members' votes are gathered
(:meth:`~SigmaOptimiserSettings.predict`), the training sigmas its certificate may assume, its
method name and the fields it adds to ``summary.json``. The pipeline calls these methods and
never branches on an option's name; a user adds an option with one module and one yaml in their
own config dir (docs/extending.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from certssb.config import Option


@dataclass
class Sigmas:
    """Per-sample noise levels, held fixed for the rest of the run."""

    train: torch.Tensor  # what the members train with (float32 [n_train])
    test_clean: torch.Tensor  # of every clean test input; grid designs: replaced by the chosen ones
    test_triggered: torch.Tensor  # of every test input with the trigger (triggered_all order)
    certificate_train_sigmas: torch.Tensor  # per training sample, what the certificate may assume

    def arrays(self) -> dict[str, np.ndarray]:
        return {"train": self.train.numpy(), "test_clean": self.test_clean.numpy(),
                "test_triggered": self.test_triggered.numpy()}


def constant(n: int, value: float) -> torch.Tensor:
    """float32 ``[n]`` filled with ``value``."""
    return torch.full((int(n),), float(value), dtype=torch.float32)


@dataclass
class SigmaOptimiserSettings(Option):
    """Base of the ``sigma_optimiser`` options.

    Subclasses set :meth:`method_name` and the sigmas; the defaults here describe one ensemble
    trained with data-independent constant sigmas and tested at one sigma per input.
    """

    config_group: ClassVar[str] = "sigma_optimiser"
    #: False for the count-certified family (``none``): the members train and predict without noise
    adds_noise: ClassVar[bool] = True
    #: True for the grid designs: each input's test sigma is chosen when certifying (votes at every
    #: candidate), and the chosen one replaces ``Sigmas.test_*`` in the outputs
    chooses_test_sigma: ClassVar[bool] = False

    # -- what the run's record says ---------------------------------------------------------------

    def method_name(self) -> str:
        """The method's name in summary.json and W&B (``rab``, ``cert-ssb``, ...)."""
        raise NotImplementedError

    def recorded_sigma_0(self) -> float | None:
        """The run's headline noise level (``summary.json`` ``sigma_0``); None without noise."""
        return None

    def data_independent(self) -> bool:
        """True when the certificate's training sigmas do not depend on the training data."""
        return True

    def summary_fields(self, alpha_per_bound: float | None) -> dict:
        """Extra fields of ``summary.json``'s ``sigma`` block."""
        return {}

    # -- the sigma step ---------------------------------------------------------------------------

    def sigmas(self, run, factory, poisoned, x_test, device, cache_dir, data_fp: dict, progress: bool) -> Sigmas:
        """The noise levels of the training set and both test sets (see :class:`Sigmas`)."""
        raise NotImplementedError

    def ensembles(self, train: torch.Tensor) -> list[torch.Tensor]:
        """The training-sigma vectors of the run's ensembles, one ensemble each (default: one)."""
        return [train]

    def predict(self, factory, stores: list, testset, ensemble, seed: int, device, progress: bool):
        """The members' votes on ``testset`` (a :class:`certssb.testsets.TestSet`): each member at
        the input's own sigma (:func:`certssb.ensemble.predict_members`)."""
        from certssb.ensemble import EvalInputs, predict_members

        inputs = EvalInputs(testset.x, testset.sigmas, torch.from_numpy(testset.indices), seed)
        return predict_members(factory, stores[0], inputs, ensemble, range(int(ensemble.n_members)), device=device,
                               progress=progress)
