"""What the count-certified certifier options share (docs/METHOD.md sections 8.2 and 8.3): from the
base models' votes (and rankings) to each input's prediction and ``certified_any_count``, the
largest k such that ANY k training samples changed arbitrarily (features and labels) cannot change
the prediction; -1 where nothing is certified (an abstention).

The options: ``dpa`` (:mod:`.dpa`), ``fa`` (:mod:`.finite_aggregation`), ``roe`` (:mod:`.runoff`, on
top of either) and ``bagging`` (:mod:`.bagging`). Each names the ensemble structures it reads
(``parts``: DPA's partition; ``buckets``: Finite Aggregation's; ``bags``) and the run is refused
before any work when the ensemble has another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .settings import CertifierSettings

__all__ = ["CountCertificate", "CountCertifierSettings", "any_count_grid"]


@dataclass
class CountCertificate:
    """Per-input results of a count certifier; every array has length m."""

    prediction: np.ndarray  # int64: the certified classifier's prediction
    certified_any_count: np.ndarray  # int64: certified changed training samples; -1 = nothing certified
    units: np.ndarray  # int64: the certificate in its own units (parts, buckets or samples), -1 = none
    extra: dict = field(default_factory=dict)  # further per-input columns for certificates.csv


@dataclass
class CountCertifierSettings(CertifierSettings):
    """Base of the count certifiers: ``certify`` turns the models' votes into a :class:`CountCertificate`."""

    family: ClassVar[str] = "count"
    #: the ensemble structures this certifier reads (``CountEnsembleSettings.structure``)
    structures: ClassVar[tuple[str, ...]] = ()
    #: True: it reads every model's class ranking, not the vote counts alone
    needs_ranks: ClassVar[bool] = False

    def check(self, run) -> None:
        super().check(run)
        ensemble = getattr(run, "ensemble", None)
        if ensemble is not None and ensemble.family == "count" and ensemble.structure not in self.structures:
            self.fail_option(f"reads {' or '.join(self.structures)}, but ensemble={ensemble.name} trains on "
                             f"{ensemble.structure}: {_hint(ensemble.structure)}")

    def method_name(self, run) -> str:
        return self.name

    def certify(self, votes, ensemble, n_train: int) -> CountCertificate:
        """The certificate of every input from ``votes`` (:class:`certssb.ensemble.ModelVotes`) of
        the models of ``ensemble`` (a count-certified ensemble option) trained on ``n_train`` samples."""
        raise NotImplementedError


def _hint(structure: str) -> str:
    return {"parts": "use certifier=dpa or roe", "buckets": "use certifier=fa or roe",
            "bags": "use certifier=bagging"}[structure]


def to_modifications(units: np.ndarray, ensemble) -> np.ndarray:
    """Certified units (parts or buckets) as certified modified training samples."""
    from .partition import modifications_from_parts

    return modifications_from_parts(units, ensemble.parts_per_modification())


def any_count_grid(n_train: int) -> list[int]:
    """The k axis of the certified-accuracy-against-k curves: 0 and 1, 2, 5 x 10^j up to ``n_train``."""
    out, scale = [0], 1
    while scale <= max(int(n_train), 1):
        out += [k for k in (scale, 2 * scale, 5 * scale) if k <= n_train]
        scale *= 10
    return out
