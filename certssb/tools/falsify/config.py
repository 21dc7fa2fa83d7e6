"""The settings of both falsification checks: :class:`FalsifyConfig` (the Gaussian family) and
:class:`CountFalsifyConfig` (the count family), each with its one-line checks."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from certssb.config import load_option
from certssb.errors import ConfigError

__all__ = ["COUNT_ENSEMBLES", "DEFAULT_POWER_COUNTS", "CountFalsifyConfig", "FalsifyConfig", "IN_RADIUS_SCALE",
           "SIGMA_RULES", "count_name", "parse_count"]

IN_RADIUS_SCALE = 0.5
SIGMA_RULES = ("sga", "fixed", "grid", "grid_ensembles")
#: the count ensembles the check trains and the certifiers each may be checked with (None: its own,
#: dpa / fa / bagging)
COUNT_CERTIFIERS = {"partition": (None, "dpa", "roe"), "finite_aggregation": (None, "fa", "roe"), "bagging": (None,)}
COUNT_ENSEMBLES = tuple(COUNT_CERTIFIERS)
#: the power check's k per ensemble: DPA flips once c + 1 corrupted parts all flip (2c + 2 leaves
#: room for models that do not learn their changed sample); bagging's certificate leaves the
#: Clopper-Pearson slack on top, and a blind attacker reaches each bag only with probability
#: 1 - (1 - k/n)^s, so it needs several times c
DEFAULT_POWER_COUNTS = {"partition": ("c+1", "2c+2"), "finite_aggregation": ("c+1", "2c+2"),
                        "bagging": ("2c+2", "8c+8")}
_COUNT_EXPR = re.compile(r"^\s*(?P<a>\d*)\s*c\s*(?:(?P<sign>[+-])\s*(?P<b>\d+))?\s*$")


@dataclass
class FalsifyConfig:
    """The Gaussian family's check (RAB, Cert-SSB and the sound designs)."""

    members: int = 100
    attacks: int = 24  # (Delta, x) pairs per scale, at most (split over the target classes)
    seed: int = 0
    sigma: str = "sga"  # sga (Cert-SSB) | fixed (RAB) | grid (train at sigma_0, test sigma chosen from test_sigmas)
    #                     | grid_ensembles (one ensemble per sigma_trains value, the pair chosen per input)
    sigma_0: float = 0.5
    objective: str = "paper"  # sga: paper | joint (needs floor)
    floor: float | None = None  # sga: sigma_train_floor (training sigmas >= floor, certified with it)
    test_sigmas: tuple | None = (0.25, 0.35, 0.5)  # grid: candidate test sigmas, each <= sigma_0;
    #   grid_ensembles: each ensemble at every listed sigma <= its training sigma (None: at its own)
    sigma_trains: tuple = (0.25, 0.5)  # grid_ensembles: one ensemble per training sigma
    sga_iterations: int = 40
    sga_draws: int = 16
    epochs: int = 8
    surrogate_epochs: int = 8
    batch_size: int = 64
    lr: float = 1e-3
    hidden: tuple = (64,)
    alpha: float = 0.001
    k_poison: int = 4  # poisoned training samples per Delta
    inputs_per_delta: int = 1  # test inputs served by one Delta (1: Delta aimed at one x, strongest)
    train_share: float = math.sqrt(0.5)  # ||Delta|| = train_share * min budget of the group
    power_scales: tuple = (2.0, 4.0, 10.0)
    test_attack: str = "pgd"  # path (towards the target class) | pgd (path, then PGD on the retrained ensemble)
    pgd_steps: int = 20
    pgd_draws: int = 4  # fresh noise draws per member and step (never the evaluation noise)
    classes: tuple = (0, 1)
    device: str = "cpu"
    keep_checkpoints: bool = False  # False: an attack's retrained members are deleted once evaluated
    threads: int | None = 1  # tiny models: one intra-op thread avoids oversubscription on shared CPUs
    progress: bool = False

    def ensemble_cfg(self, epochs: int | None = None):
        """The ``ensemble=gaussian`` settings with this check's training knobs."""
        return load_option("ensemble", "gaussian", epochs=int(epochs if epochs is not None else self.epochs),
                           batch_size=int(self.batch_size), lr=float(self.lr), device=self.device)

    def sigma_cfg(self):
        """The ``sigma_optimiser`` option's settings (its yaml's values) with this check's knobs."""
        tests = None if self.test_sigmas is None else [float(s) for s in self.test_sigmas]
        if self.sigma == "grid":
            return load_option("sigma_optimiser", "grid", sigma_train=float(self.sigma_0), test_sigmas=tests)
        if self.sigma == "grid_ensembles":
            return load_option("sigma_optimiser", "grid_ensembles", sigma_trains=[float(t) for t in self.sigma_trains],
                               test_sigmas=tests)  # a bad sigma_trains is reported by its own key
        if self.sigma == "fixed":
            return load_option("sigma_optimiser", "fixed", sigma_0=float(self.sigma_0))
        return load_option("sigma_optimiser", self.sigma, sigma_0=float(self.sigma_0), device=self.device,
                           n_draws=int(self.sga_draws), iterations=int(self.sga_iterations), objective=self.objective,
                           sigma_train_floor=self.floor)

    def validate(self) -> None:
        if self.test_attack not in ("path", "pgd"):
            raise ConfigError(f"--test-attack must be path or pgd, got {self.test_attack!r}")
        if self.sigma not in SIGMA_RULES:
            raise ConfigError(f"--sigma must be one of {', '.join(SIGMA_RULES)}, got {self.sigma!r}")
        self.sigma_cfg().check(None)  # objective / floor / test_sigmas, one-line errors
        if self.members < 1 or self.attacks < 1 or self.k_poison < 1 or self.inputs_per_delta < 1:
            raise ConfigError("--members, --attacks, --k-poison and --inputs-per-delta must be >= 1")
        if not 0.0 <= self.train_share < 1.0:
            raise ConfigError(f"--train-share must be in [0, 1), got {self.train_share}")
        if any(s <= 0 for s in self.power_scales):
            raise ConfigError("--power-scales must be positive")


def parse_count(expr: str) -> tuple[int, int]:
    """``"2c+2"`` -> ``(2, 2)``: a count ``a * c + b`` of changed training samples as a function of
    an input's certificate ``c`` (``"c"``, ``"c+1"``, ``"3c"``, ``"2c-1"``)."""
    match = _COUNT_EXPR.match(str(expr))
    if not match:
        raise ConfigError(f"--power-counts: {expr!r} is not of the form a*c+b (e.g. c+1, 2c+2)")
    a = int(match.group("a")) if match.group("a") else 1
    b = int(match.group("b") or 0) * (-1 if match.group("sign") == "-" else 1)
    return a, b


def count_name(a: int, b: int) -> str:
    """``(2, 2)`` -> ``"2c+2"``, ``(1, 0)`` -> ``"c"``."""
    return f"{'' if a == 1 else a}c" + (f"{b:+d}" if b else "")


@dataclass
class CountFalsifyConfig:
    """The count family's check: DPA (``ensemble=partition``, ``key: index``), Finite Aggregation,
    run-off election on either, or bagging."""

    ensemble: str = "partition"  # partition (DPA) | finite_aggregation | bagging
    certifier: str | None = None  # None: the ensemble's own (dpa, fa, bagging) | roe (run-off election)
    parts: int = 30  # partition: models, one per disjoint part; finite_aggregation: parts x spread buckets
    spread: int = 2  # finite_aggregation: the buckets each model trains on (and the models each bucket feeds)
    members: int = 100  # bagging: models, one per bag
    bag_size: int = 30  # bagging: samples per bag (drawn with replacement)
    alpha: float = 0.001  # bagging: the certificate holds with probability 1 - alpha
    attacks: int = 16  # test inputs attacked (each at k = c and at every power count)
    seed: int = 0
    epochs: int = 60  # enough for a part's model to learn the changed samples (30: half of them)
    batch_size: int = 16
    lr: float = 1e-3
    hidden: tuple = (64,)
    classes: tuple | None = None  # digits classes (None: all ten)
    power_counts: tuple | None = None  # the power check's k as functions of the certificate c
    #   (None: DEFAULT_POWER_COUNTS of the ensemble)
    device: str = "cpu"
    keep_checkpoints: bool = False
    threads: int | None = 1
    progress: bool = False

    def ensemble_cfg(self):
        """The ``ensemble=<ensemble>`` option's settings (its yaml) with this check's knobs."""
        size = {"partition": {"n_parts": int(self.parts), "key": "index"},
                "finite_aggregation": {"n_parts": int(self.parts), "spread": int(self.spread), "key": "index"},
                "bagging": {"n_members": int(self.members), "bag_size": int(self.bag_size)}}[self.ensemble]
        return load_option("ensemble", self.ensemble, epochs=int(self.epochs), batch_size=int(self.batch_size),
                           lr=float(self.lr), device=self.device, **size)

    def certifier_cfg(self):
        """``certifier=dpa`` / ``fa`` (or ``roe``) for the partition / Finite Aggregation,
        ``certifier=bagging`` (at ``alpha``) for the bags."""
        if self.ensemble != "bagging":
            own = "dpa" if self.ensemble == "partition" else "fa"
            return load_option("certifier", self.certifier or own)
        return load_option("certifier", "bagging", alpha=float(self.alpha))

    def counts(self) -> list[tuple[int, int]]:
        """The power check's ``(a, b)`` of ``k = a * c + b``, in order."""
        exprs = self.power_counts if self.power_counts is not None else DEFAULT_POWER_COUNTS[self.ensemble]
        return [parse_count(e) for e in exprs]

    def validate(self) -> None:
        if self.ensemble not in COUNT_ENSEMBLES:
            raise ConfigError(f"--ensemble must be one of {', '.join(COUNT_ENSEMBLES)}, got {self.ensemble!r}")
        if self.certifier not in COUNT_CERTIFIERS[self.ensemble]:
            raise ConfigError(f"--certifier {self.certifier} does not apply to --ensemble {self.ensemble} "
                              "(partition: dpa or roe; finite_aggregation: fa or roe; bagging: none)")
        if min(self.parts, self.spread, self.members, self.bag_size, self.attacks, self.epochs, self.batch_size) < 1:
            raise ConfigError("--parts, --spread, --members, --bag-size, --attacks, --epochs and --batch-size must be >= 1")
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"--alpha must be in (0, 1), got {self.alpha}")
        for a, b in self.counts():
            if a < 1 or a + b < 2:  # a*c + b > c for every c >= 1
                raise ConfigError(f"--power-counts: {count_name(a, b)} is not beyond the certificate c "
                                  "for every c >= 1")
        self.certifier_cfg().check(None)
