"""``sigma_optimiser=sga`` (and ``sga_joint``): Cert-SSB's per-sample noise levels by stochastic
gradient ascent on the proxy radius through a surrogate (docs/METHOD.md sections 3 and 7).

The sigmas come from a surrogate trained with ``sigma_0`` on the (poisoned) training set, are
cached next to the member checkpoints keyed by everything they depend on (:mod:`.cache`), and the
option then decides what the members train with and what the certificate may assume:

- without a floor (the paper's recipe): the members train with the SGA sigmas and the certificate
  uses them (``min_i sigma_i``). They are computed from the possibly poisoned training set, so the
  certificate is conditional on sigmas the attacker influenced, and a poisoned sample that lowers
  its own sigma lowers every radius;
- with ``sigma_train_floor = f``: every training sigma is clamped to ``>= f`` and the certificate
  uses ``f`` everywhere (data-independent); sigmas above the floor change accuracy only.

``objective: joint`` (``sga_joint``) ascends the sound radius ``min(sigma_x, f) * G / 2`` instead of
the paper's ``sigma_x * G / 2``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import ClassVar, Optional

import torch
from omegaconf import MISSING

from . import cache as sigma_cache
from .base import SigmaOptimiserSettings, Sigmas, constant

log = logging.getLogger("certssb")

OBJECTIVES = ("paper", "joint")


@dataclass
class SGASettings(SigmaOptimiserSettings):
    """Cert-SSB: per-sample sigma by stochastic gradient ascent on the proxy radius."""

    #: keys that change how the sigmas are computed, not their values
    execution_keys: ClassVar[tuple] = ("device",)

    sigma_0: float = MISSING
    n_draws: int = MISSING
    lr: float = MISSING
    iterations: int = MISSING
    clip_low: float = MISSING
    clip_high: float = MISSING
    sigma_min: float = MISSING
    sigma_max: float = MISSING
    batch_size: int = MISSING
    surrogate_epochs: Optional[int] = MISSING
    device: str = MISSING
    objective: str = MISSING                    # paper | joint (ascend the sound radius)
    sigma_train_floor: Optional[float] = MISSING  # training sigmas >= floor; the certificate uses it

    def check(self, run) -> None:
        self.require_range("sigma_min", 0.0, None, low_open=True)
        self.require_range("sigma_max", self.sigma_min, None)
        self.require_range("sigma_0", self.sigma_min, self.sigma_max)
        self.require_range("clip_low", 0.0, 0.5, low_open=True, high_open=True)
        self.require_range("clip_high", 0.5, 1.0, low_open=True, high_open=True)
        self.require_range("n_draws", 1, None)
        self.require_range("iterations", 0, None)
        self.require_range("lr", 0.0, None)
        self.require_range("batch_size", 1, None)
        if self.surrogate_epochs is not None:
            self.require_range("surrogate_epochs", 1, None)
        self.require_choice("objective", OBJECTIVES)
        if self.sigma_train_floor is not None:
            self.require_range("sigma_train_floor", 0.0, self.sigma_max, low_open=True)
        if self.objective == "joint" and self.sigma_train_floor is None:
            self.fail("sigma_train_floor", "must be set with objective=joint (the training-side sigma of the sound "
                                           "radius min(sigma_x, sigma_train_floor) * G / 2)")

    # -- record -----------------------------------------------------------------------------------

    def method_name(self) -> str:
        if self.objective == "joint":
            return "cert-ssb-joint"
        return "cert-ssb-floor" if self.sigma_train_floor is not None else "cert-ssb"

    def recorded_sigma_0(self) -> float:
        return float(self.sigma_0)

    def data_independent(self) -> bool:
        return self.sigma_train_floor is not None

    def summary_fields(self, alpha_per_bound) -> dict:
        return {"objective": self.objective, "sigma_train_floor": self.sigma_train_floor}

    # -- the SGA step (the released rule overrides it) --------------------------------------------

    def proxy_cap(self) -> float | None:
        """The sound objective's cap on the leading sigma (``joint``: the floor), else None."""
        return self.sigma_train_floor if self.objective == "joint" else None

    def step(self, model, xb: torch.Tensor, sigma: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``lr * d r / d sigma`` of the proxy radius at ``sigma`` [b] with draws ``eps``."""
        from .proxy import radius_from_probs, smoothed_probs

        s = sigma.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            r = radius_from_probs(smoothed_probs(model, xb, s, eps), s, (self.clip_low, self.clip_high),
                                  self.proxy_cap())
            (grad,) = torch.autograd.grad(r.sum(), s)
        return self.lr * grad

    # -- the run's sigmas ---------------------------------------------------------------------------

    def training_sigmas(self, raw: torch.Tensor) -> torch.Tensor:
        """The sigmas the members train with: ``raw`` clamped to ``>= sigma_train_floor`` if set."""
        return raw if self.sigma_train_floor is None else raw.clamp(min=self.sigma_train_floor)

    def certificate_train_sigmas(self, train: torch.Tensor) -> torch.Tensor:
        """What the certificate may assume per training sample: the floor where set, else ``train``."""
        if self.sigma_train_floor is None:
            return train.to(torch.float32)
        if bool((train < self.sigma_train_floor - 1e-7).any()):
            raise ValueError("a training sigma lies below sigma_train_floor: clamp with training_sigmas first")
        return constant(train.shape[0], self.sigma_train_floor)

    def with_design(self, train: torch.Tensor, test_clean: torch.Tensor, test_triggered: torch.Tensor) -> Sigmas:
        """The run's :class:`Sigmas` from raw SGA sigmas (floored training sigmas, certificate sigmas)."""
        train = self.training_sigmas(train)
        return Sigmas(train, test_clean, test_triggered, self.certificate_train_sigmas(train))

    def sigmas(self, run, factory, poisoned, x_test, device, cache_dir, data_fp, progress) -> Sigmas:
        from certssb.config import to_plain
        from certssb.ensemble import fingerprint_of, train_single
        from certssb.resume import training_settings

        from .optimise import optimise_sigmas

        n_train, n_test = len(poisoned.x_train), len(x_test)
        fp = fingerprint_of({"data": data_fp, "sigma": to_plain(self), "model": to_plain(run.model),
                             "ensemble": training_settings(run), "device": device.type})
        cache = sigma_cache.cache_path(cache_dir, fp)
        cached = sigma_cache.load_sigmas(cache, fp, {"train": n_train, "test_clean": n_test, "test_triggered": n_test})
        if cached is not None:
            return self.with_design(*(torch.from_numpy(cached[p]) for p in sigma_cache.PARTS))
        epochs = self.surrogate_epochs if self.surrogate_epochs is not None else run.ensemble.epochs
        log.info("training the surrogate (sigma_0=%.3g, %d epochs) for %s", self.sigma_0, epochs, self.name)
        surrogate = train_single(factory, poisoned.x_train, poisoned.y_train, float(self.sigma_0),
                                 replace(run.ensemble, epochs=int(epochs)), run.seed, "surrogate", device)
        out = []
        for purpose, x in (("train", poisoned.x_train), ("test-clean", x_test),
                           ("test-triggered", poisoned.x_test_triggered)):
            log.info("optimising sigma (%s) for %d %s inputs", self.name, len(x), purpose)
            out.append(optimise_sigmas(self, surrogate, x, run.seed, purpose, device=device, progress=progress).float())
        sigma_cache.save_sigmas(cache, fp, {p: t.numpy() for p, t in zip(sigma_cache.PARTS, out)})
        return self.with_design(*out)
