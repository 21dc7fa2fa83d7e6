"""``sigma_optimiser=none``: no noise at all, for the count-certified defences (docs/METHOD.md
section 8.2: DPA, Finite Aggregation, run-off election and bagging train and predict on the data as
it is; their certificate counts training samples, not an L2 distance)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import SigmaOptimiserSettings, Sigmas, constant


@dataclass
class NoNoiseSettings(SigmaOptimiserSettings):
    """No smoothing noise: every sigma is 0 (the ensemble option decides what each model sees)."""

    adds_noise: ClassVar[bool] = False

    def method_name(self) -> str:
        return "no-noise"

    def sigmas(self, run, factory, poisoned, x_test, device, cache_dir, data_fp, progress) -> Sigmas:
        n_train, n_test = len(poisoned.x_train), len(x_test)
        return Sigmas(constant(n_train, 0.0), constant(n_test, 0.0), constant(n_test, 0.0), constant(n_train, 0.0))

    def predict(self, factory, stores, testset, ensemble, seed, device, progress):
        """Every model's class ranking on every input (no noise): :class:`certssb.ensemble.ModelVotes`."""
        from certssb.ensemble import predict_models

        return predict_models(factory, stores[0], testset.x, ensemble, range(int(ensemble.n_members)), device=device,
                              progress=progress)
