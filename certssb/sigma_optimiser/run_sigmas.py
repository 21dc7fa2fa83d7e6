"""The run's sigma step: per-sample noise levels for the training set and both test sets.

SGA sigmas come from a surrogate trained on the (poisoned) training set and are cached next to
the member checkpoints, keyed by everything they depend on (:mod:`.cache`); the design
(:mod:`.design`) then decides the training sigmas and what the certificate may assume.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from certssb.config import to_plain
from certssb.ensemble import fingerprint_of, train_single
from certssb.resume import training_settings

from . import cache as sigma_cache
from . import design
from .config import GRID_RULES, parse_sigma_config
from .optimise import optimise_sigmas

log = logging.getLogger("certssb")


@dataclass
class Sigmas:
    """Per-sample noise levels, held fixed for the rest of the run."""

    train: torch.Tensor  # what the members train with (floored if sigma_train_floor is set)
    test_clean: torch.Tensor  # grid: replaced by the chosen test sigmas after certification
    test_triggered: torch.Tensor  # of every test input with the trigger (triggered_all order)
    certificate_train_sigmas: torch.Tensor | None = None  # per training sample, what the certificate may assume

    def arrays(self) -> dict[str, np.ndarray]:
        return {"train": self.train.numpy(), "test_clean": self.test_clean.numpy(),
                "test_triggered": self.test_triggered.numpy()}


def _with_design(sig_cfg, sigmas: Sigmas) -> Sigmas:
    train = design.training_sigmas(sig_cfg, sigmas.train)
    return Sigmas(train, sigmas.test_clean, sigmas.test_triggered, design.certificate_train_sigmas(sig_cfg, train))


def run_sigmas(cfg, factory, poisoned, x_test, device, cache_dir: Path, data_fp: dict, progress: bool) -> Sigmas:
    """Per-sample sigmas for the training set, the clean and the triggered test inputs.

    SGA sigmas are cached next to the member checkpoints, keyed by everything they depend on.
    """
    sig = cfg.sigma_optimiser
    n_train, n_test = len(poisoned.x_train), len(x_test)
    if sig.name in ("fixed", *GRID_RULES):
        s0 = float(sig.sigma_0 if sig.name == "fixed" else max(s for _, s in parse_sigma_config(sig).candidates))
        train = optimise_sigmas(sig, None, poisoned.x_train, cfg.seed, "train")
        return _with_design(sig, Sigmas(train, torch.full((n_test,), s0), torch.full((n_test,), s0)))
    fp = fingerprint_of({"data": data_fp, "sigma": to_plain(sig), "model": to_plain(cfg.model),
                         "ensemble": training_settings(cfg), "device": device.type})
    cache = sigma_cache.cache_path(cache_dir, fp)
    cached = sigma_cache.load_sigmas(cache, fp, {"train": n_train, "test_clean": n_test, "test_triggered": n_test})
    if cached is not None:
        return _with_design(sig, Sigmas(*(torch.from_numpy(cached[p]) for p in sigma_cache.PARTS)))
    epochs = sig.surrogate_epochs if sig.surrogate_epochs is not None else cfg.ensemble.epochs
    log.info("training the surrogate (sigma_0=%.3g, %d epochs) for %s", sig.sigma_0, epochs, sig.name)
    surrogate = train_single(factory, poisoned.x_train, poisoned.y_train, float(sig.sigma_0),
                             replace(cfg.ensemble, epochs=int(epochs)), cfg.seed, "surrogate", device)
    out = []
    for purpose, x in (("train", poisoned.x_train), ("test-clean", x_test),
                       ("test-triggered", poisoned.x_test_triggered)):
        log.info("optimising sigma (%s) for %d %s inputs", sig.name, len(x), purpose)
        out.append(optimise_sigmas(sig, surrogate, x, cfg.seed, purpose, device=device, progress=progress).float())
    sigma_cache.save_sigmas(cache, fp, {p: t.numpy() for p, t in zip(sigma_cache.PARTS, out)})
    return _with_design(sig, Sigmas(*out))


