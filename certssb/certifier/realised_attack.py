"""The attack as it was realised: trigger sizes, and the per-sample sizes the poison count assumes.

Default ``eta`` / ``eps`` of the certified poisoned-sample count (``certifier.poison_eta``,
``certifier.poison_eps``; ``null`` = default) are the MAXIMUM realised per-sample L2 size of the
poisoned training perturbations and of the test triggers. The maximum (not the median) makes the
realised attack an instance of the threat model "each sample moved by at most eta": every one of
its perturbations is within the stated size. Without poisoned training samples ``eta`` falls back
to ``eps`` (the trigger's size); without any trigger both are 0 (then the count is the
training-set size wherever the prediction is certified at all).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from certssb.errors import ConfigError

from .ellipsoid import whitened_attack_size

__all__ = ["PoisonSizes", "RealisedAttack", "resolve_poison_sizes"]


@dataclass
class RealisedAttack:
    """The attack as run (numpy arrays; no torch here): the training samples whose features it
    changed with their L2 sizes, those whose labels it changed, and each test trigger's size."""

    poisoned_index: np.ndarray  # [p] int: training samples whose features the attack changed
    train_delta_l2: np.ndarray  # [p]: ||delta_i||_2 of each of them
    test_delta_l2: np.ndarray  # [n_test]: ||delta||_2 of each test input's trigger
    relabelled_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # labels changed

    def __post_init__(self) -> None:
        self.poisoned_index = np.asarray(self.poisoned_index, dtype=np.int64).reshape(-1)
        self.train_delta_l2 = np.asarray(self.train_delta_l2, dtype=np.float64).reshape(-1)
        self.test_delta_l2 = np.asarray(self.test_delta_l2, dtype=np.float64).reshape(-1)
        self.relabelled_index = np.asarray(self.relabelled_index, dtype=np.int64).reshape(-1)
        if self.poisoned_index.shape != self.train_delta_l2.shape:
            raise ConfigError("poisoned_index and train_delta_l2 must have the same length")

    @property
    def relabels(self) -> bool:
        """The attack changed training labels: outside every Gaussian certificate (METHOD.md 8.1)."""
        return bool(self.relabelled_index.size)

    @property
    def n_changed(self) -> int:
        """Training samples the attack changed at all (features, label or both): what a count
        certificate must cover for the attack as run."""
        return int(np.union1d(self.poisoned_index, self.relabelled_index).size)

    def joint_l2(self, test_index) -> np.ndarray:
        """``sqrt(||delta||^2 + sum_i ||delta_i||^2)`` for the test inputs ``test_index``."""
        d = self.test_delta_l2[np.asarray(test_index, dtype=np.int64)]
        return np.sqrt(d ** 2 + float(np.sum(self.train_delta_l2 ** 2)))

    def whitened(self, test_index, sigma_x, certificate_train_sigmas) -> np.ndarray:
        """The ellipsoid's left side (square-rooted) for the test inputs ``test_index``."""
        s = np.asarray(certificate_train_sigmas, dtype=np.float64).reshape(-1)
        if self.poisoned_index.size and self.poisoned_index.max() >= s.size:
            raise ConfigError(f"poisoned index {self.poisoned_index.max()} outside {s.size} training sigmas")
        d = self.test_delta_l2[np.asarray(test_index, dtype=np.int64)]
        return whitened_attack_size(d, sigma_x, self.train_delta_l2, s[self.poisoned_index])


@dataclass
class PoisonSizes:
    """``eta`` (per poisoned training sample) and ``eps`` (test trigger), with where they came from."""

    eta: float
    eps: float
    eta_source: str
    eps_source: str

    def as_dict(self) -> dict:
        return {"eta": self.eta, "eps": self.eps, "eta_source": self.eta_source, "eps_source": self.eps_source}


def resolve_poison_sizes(attack: RealisedAttack, poison_eta, poison_eps) -> PoisonSizes:
    """The configured sizes, or the attack's realised maxima (see the module docstring)."""
    eps_default = float(attack.test_delta_l2.max()) if attack.test_delta_l2.size else 0.0
    if poison_eps is not None:
        eps, eps_source = float(poison_eps), "certifier.poison_eps"
    else:
        eps, eps_source = eps_default, "max realised test trigger L2"
    if poison_eta is not None:
        eta, eta_source = float(poison_eta), "certifier.poison_eta"
    elif attack.train_delta_l2.size:
        eta, eta_source = float(attack.train_delta_l2.max()), "max realised poisoned-sample L2"
    else:
        eta, eta_source = eps_default, "max realised test trigger L2 (no poisoned training samples)"
    for name, value in (("certifier.poison_eta", eta), ("certifier.poison_eps", eps)):
        if not (np.isfinite(value) and value >= 0.0):
            raise ConfigError(f"{name} must be null or a finite number >= 0; got {value!r}")
    return PoisonSizes(eta, eps, eta_source, eps_source)
