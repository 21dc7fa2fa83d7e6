"""What each sigma design lets the certificate assume (docs/METHOD.md sections 3 and 7).

The certificate's radius ``min(sigma_x, min_i s_i) * G / 2`` needs the training-side sigmas
``s_i`` of the smoothing distribution. Which ``s_i`` a design may put there, "the certificate
training sigmas", is decided here and nowhere else:

- ``fixed`` (RAB): sigma_0 for every sample (data-independent);
- ``sga`` / ``released`` without a floor: the SGA sigmas themselves. They are computed from the
  (possibly poisoned) training set, so the certificate is conditional on sigmas the attacker
  influenced, and a poisoned sample that lowers its own sigma lowers every radius;
- ``sga`` / ``released`` with ``sigma_train_floor = f``: every training sigma is clamped to
  ``>= f`` and the certificate uses ``f`` everywhere (data-independent). Sigmas above the floor
  change accuracy only, never the certified ball;
- ``grid``: ``sigma_train`` for every sample (data-independent);
- ``grid_ensembles``: one ensemble per ``sigma_trains`` value, each with that sigma for every
  sample (data-independent); the certificate of an input uses the training sigma of the ensemble
  it was certified with (chosen per input when certifying), at least ``min(sigma_trains)``.
"""

from __future__ import annotations

import torch

from .config import GRID_RULES, SigmaSettings, parse_sigma_config

__all__ = ["certificate_train_sigmas", "data_independent", "ensemble_train_sigmas", "method_name", "summary_fields",
           "training_sigmas"]


def _settings(cfg) -> SigmaSettings:
    return cfg if isinstance(cfg, SigmaSettings) else parse_sigma_config(cfg)


def training_sigmas(cfg, raw: torch.Tensor) -> torch.Tensor:
    """The sigmas the members train with: ``raw`` clamped to ``>= sigma_train_floor`` if set."""
    sc = _settings(cfg)
    if sc.sigma_train_floor is None:
        return raw
    return raw.clamp(min=sc.sigma_train_floor)


def certificate_train_sigmas(cfg, train: torch.Tensor) -> torch.Tensor:
    """Per-training-sample sigmas the certificate may assume (float32 [n], see the module docstring).

    ``train``: the sigmas the members were trained with (after :func:`training_sigmas`).
    """
    sc = _settings(cfg)
    n = train.shape[0]
    if sc.name == "fixed":
        return torch.full((n,), sc.sigma_0, dtype=torch.float32)
    if sc.name in GRID_RULES:  # grid_ensembles: the smallest; each input's own is set when certifying
        return torch.full((n,), sc.sigma_train, dtype=torch.float32)
    if sc.sigma_train_floor is not None:
        if bool((train < sc.sigma_train_floor - 1e-7).any()):
            raise ValueError("a training sigma lies below sigma_train_floor: clamp with training_sigmas first")
        return torch.full((n,), sc.sigma_train_floor, dtype=torch.float32)
    return train.to(torch.float32)


def data_independent(cfg) -> bool:
    """True when the certificate's training sigmas do not depend on the training data."""
    sc = _settings(cfg)
    return sc.name in ("fixed", *GRID_RULES) or sc.sigma_train_floor is not None


def ensemble_train_sigmas(cfg, train: torch.Tensor) -> list[torch.Tensor]:
    """The training-sigma vectors of the run's ensembles, one ensemble each: ``train`` alone, or
    for ``grid_ensembles`` one constant vector per ``sigma_trains`` value (in that order)."""
    sc = _settings(cfg)
    if sc.name == "grid_ensembles":
        return [torch.full((train.shape[0],), t, dtype=torch.float32) for t in sc.sigma_trains]
    return [train]


def method_name(cfg) -> str:
    """Name of the method in summary.json: ``rab``, ``cert-ssb`` (the paper's SGA),
    ``cert-ssb-floor`` (paper objective, floored training sigmas), ``cert-ssb-joint`` (joint-aware
    SGA), ``cert-ssb-released`` (+ ``-floor``), ``cert-ssb-grid``."""
    sc = _settings(cfg)
    if sc.name == "fixed":
        return "rab"
    if sc.name == "grid":
        return "cert-ssb-grid"
    if sc.name == "grid_ensembles":
        return "cert-ssb-grid-ensembles"
    if sc.name == "released":
        return "cert-ssb-released" + ("-floor" if sc.sigma_train_floor is not None else "")
    if sc.objective == "joint":
        return "cert-ssb-joint"
    return "cert-ssb-floor" if sc.sigma_train_floor is not None else "cert-ssb"


def summary_fields(cfg, alpha_per_bound: float | None = None) -> dict:
    """The design's settings for summary.json's ``sigma`` block (``grid``: also the alpha each
    bound used after the selection correction)."""
    sc = _settings(cfg)
    if sc.name == "grid":
        return {"grid": {"sigma_train": sc.sigma_train, "test_sigmas": list(sc.test_sigmas),
                         "selection": sc.selection,
                         "selection_members": sc.selection_members if sc.selection == "separate" else 0,
                         "alpha_per_bound": alpha_per_bound}}
    if sc.name == "grid_ensembles":
        return {"grid": {"sigma_trains": list(sc.sigma_trains), "test_sigmas": list(sc.test_sigmas) or None,
                         "candidates": [list(c) for c in sc.candidates], "selection": sc.selection,
                         "selection_members": 0, "alpha_per_bound": alpha_per_bound}}
    if sc.name == "fixed":
        return {}
    return {"objective": sc.objective, "sigma_train_floor": sc.sigma_train_floor}
