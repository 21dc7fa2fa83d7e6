"""Validation of the ``sigma_optimiser`` config group.

Functions in this package only read the keys listed in :class:`SigmaSettings`, through attribute
access, so OmegaConf ``DictConfig`` objects and ``types.SimpleNamespace`` objects both work.
Missing keys (or keys set to ``None``) take the defaults below; ``sigma_0`` is required.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from certssb.errors import ConfigError

GROUP = "sigma_optimiser"
RULES = ("fixed", "sga", "released", "grid", "grid_ensembles")
GRID_RULES = ("grid", "grid_ensembles")  # the test sigma (and training sigma) is chosen per input when certifying
OBJECTIVES = ("paper", "joint")
SELECTIONS = ("union", "separate")

DEFAULTS = {
    "n_draws": 32,
    "lr": 0.04,
    "iterations": 100,
    "clip_low": 0.02,
    "clip_high": 0.98,
    "sigma_min": 0.05,
    "sigma_max": 1.0,
    "batch_size": 64,
    "device": None,
}


@dataclass(frozen=True)
class SigmaSettings:
    """Validated sigma-optimiser settings (plain Python values)."""

    name: str
    sigma_0: float
    n_draws: int = DEFAULTS["n_draws"]
    lr: float = DEFAULTS["lr"]
    iterations: int = DEFAULTS["iterations"]
    clip_low: float = DEFAULTS["clip_low"]
    clip_high: float = DEFAULTS["clip_high"]
    sigma_min: float | None = DEFAULTS["sigma_min"]
    sigma_max: float | None = DEFAULTS["sigma_max"]
    batch_size: int = DEFAULTS["batch_size"]
    device: str | None = None
    objective: str = "paper"  # sga: paper = sigma_x * G / 2; joint = min(sigma_x, floor) * G / 2
    sigma_train_floor: float | None = None  # sga / released: training sigmas >= floor, certified with it
    sigma_train: float | None = None  # grid: the one data-independent training sigma
    test_sigmas: tuple[float, ...] = ()  # grid: candidate test sigmas, each <= sigma_train
    selection: str = "union"  # grid: union (alpha / |S|) | separate (disjoint selection members)
    selection_members: int = 0  # grid, selection=separate: the first members, used only to choose s
    sigma_trains: tuple[float, ...] = ()  # grid_ensembles: one ensemble trained at each of these sigmas

    @property
    def candidates(self) -> tuple[tuple[float, float], ...]:
        """grid / grid_ensembles: the (training sigma, test sigma) pairs every input is evaluated
        at, in prediction order (ensemble by ensemble); the union bound runs over all of them."""
        if self.name == "grid":
            return tuple((float(self.sigma_train), float(s)) for s in self.test_sigmas)
        if self.name == "grid_ensembles":
            return tuple((t, s) for t in self.sigma_trains for s in (self.test_sigmas or (t,)) if s <= t)
        return ()


def _read(cfg, key: str):
    try:
        value = getattr(cfg, key, None)
    except Exception as exc:  # e.g. omegaconf MissingMandatoryValue ('???')
        raise ConfigError(f"{GROUP}.{key} could not be read ({type(exc).__name__}); set it in the config") from None
    return value


def _float(cfg, key: str, required: bool = False) -> float | None:
    value = _read(cfg, key)
    if value is None:
        if required:
            raise ConfigError(f"{GROUP}.{key} is required; set it to a positive number")
        value = DEFAULTS.get(key)
        if value is None:
            return None
    if isinstance(value, bool):
        raise ConfigError(f"{GROUP}.{key} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{GROUP}.{key} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ConfigError(f"{GROUP}.{key} must be finite, got {value!r}")
    return out


def _int(cfg, key: str) -> int:
    value = _read(cfg, key)
    if value is None:
        value = DEFAULTS[key]
    if isinstance(value, bool):
        raise ConfigError(f"{GROUP}.{key} must be an integer, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        try:
            import numpy as np

            if isinstance(value, np.integer):
                value = int(value)
        except ImportError:  # pragma: no cover
            pass
    if not isinstance(value, int):
        raise ConfigError(f"{GROUP}.{key} must be an integer, got {value!r}")
    return value


def parse_sigma_config(cfg) -> SigmaSettings:
    """Read and validate ``cfg``; raise :class:`ConfigError` (one line, naming the key) if invalid.

    For ``fixed`` only ``name`` and ``sigma_0`` are read and checked (other keys are unused). For
    ``grid``: ``sigma_train``, ``test_sigmas`` (each <= sigma_train), ``selection`` and
    ``selection_members``. For ``sga`` and ``released`` every SGA key is checked, with the module
    defaults filling gaps, plus ``objective`` (``joint`` needs ``sga`` and a floor) and
    ``sigma_train_floor``.
    """
    if cfg is None:
        raise ConfigError(f"{GROUP} config is missing; choose one of {', '.join(RULES)}")
    name = _read(cfg, "name")
    if not isinstance(name, str) or name not in RULES:
        raise ConfigError(f"{GROUP}.name must be one of {', '.join(RULES)}, got {name!r}")

    sigma_0 = _float(cfg, "sigma_0", required=True)
    if sigma_0 <= 0:
        raise ConfigError(f"{GROUP}.sigma_0 must be > 0, got {sigma_0:g}")

    if name == "fixed":  # the box is not used (matches certssb.config: checked for sga/released only)
        return SigmaSettings(name=name, sigma_0=sigma_0, sigma_min=None, sigma_max=None)
    if name == "grid":
        return _parse_grid(cfg, sigma_0)
    if name == "grid_ensembles":
        return _parse_grid_ensembles(cfg, sigma_0)
    sigma_min = _float(cfg, "sigma_min")
    sigma_max = _float(cfg, "sigma_max")
    if sigma_min <= 0:
        raise ConfigError(f"{GROUP}.sigma_min must be > 0, got {sigma_min:g}")
    if sigma_max < sigma_min:
        raise ConfigError(f"{GROUP}.sigma_max must be >= sigma_min ({sigma_min:g}), got {sigma_max:g}")
    if sigma_0 < sigma_min:
        raise ConfigError(f"{GROUP}.sigma_0 must be >= sigma_min ({sigma_min:g}), got {sigma_0:g}")
    if sigma_0 > sigma_max:
        raise ConfigError(f"{GROUP}.sigma_0 must be <= sigma_max ({sigma_max:g}), got {sigma_0:g}")

    clip_low = _float(cfg, "clip_low")
    clip_high = _float(cfg, "clip_high")
    if not 0 < clip_low < 0.5:
        raise ConfigError(f"{GROUP}.clip_low must be in (0, 0.5), got {clip_low:g}")
    if not 0.5 < clip_high < 1:
        raise ConfigError(f"{GROUP}.clip_high must be in (0.5, 1), got {clip_high:g}")

    n_draws = _int(cfg, "n_draws")
    if n_draws < 1:
        raise ConfigError(f"{GROUP}.n_draws must be >= 1, got {n_draws}")
    iterations = _int(cfg, "iterations")
    if iterations < 0:
        raise ConfigError(f"{GROUP}.iterations must be >= 0, got {iterations}")
    lr = _float(cfg, "lr")
    if lr < 0:
        raise ConfigError(f"{GROUP}.lr must be >= 0, got {lr:g}")
    batch_size = _int(cfg, "batch_size")
    if batch_size < 1:
        raise ConfigError(f"{GROUP}.batch_size must be >= 1, got {batch_size}")

    device = _read(cfg, "device")
    if device is not None and not isinstance(device, str):
        device = str(device)

    objective = _read(cfg, "objective")
    objective = "paper" if objective is None else objective
    if objective not in OBJECTIVES:
        raise ConfigError(f"{GROUP}.objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    floor = _float(cfg, "sigma_train_floor")
    if floor is not None and not 0 < floor <= sigma_max:
        raise ConfigError(f"{GROUP}.sigma_train_floor must be null or in (0, sigma_max={sigma_max:g}], got {floor:g}")
    if objective == "joint":
        if name != "sga":
            raise ConfigError(f"{GROUP}.objective=joint needs name=sga (the {name} rule ignores the objective)")
        if floor is None:
            raise ConfigError(f"{GROUP}.objective=joint needs {GROUP}.sigma_train_floor (the training-side sigma "
                              "of the sound radius min(sigma_x, floor) * G / 2)")

    return SigmaSettings(
        name=name,
        sigma_0=sigma_0,
        n_draws=n_draws,
        lr=lr,
        iterations=iterations,
        clip_low=clip_low,
        clip_high=clip_high,
        sigma_min=sigma_min,
        sigma_max=sigma_max,
        batch_size=batch_size,
        device=device,
        objective=objective,
        sigma_train_floor=floor,
    )


def _sigma_list(cfg, key: str) -> list[float]:
    """A non-empty list of distinct finite numbers > 0."""
    raw = _read(cfg, key)
    if raw is None or isinstance(raw, (str, bytes)) or not hasattr(raw, "__iter__"):
        raise ConfigError(f"{GROUP}.{key} must be a non-empty list of numbers, got {raw!r}")
    values = []
    for v in raw:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)) or float(v) <= 0:
            raise ConfigError(f"{GROUP}.{key} must hold finite numbers > 0, got {list(raw)!r}")
        values.append(float(v))
    if not values:
        raise ConfigError(f"{GROUP}.{key} must list at least one sigma")
    if len(set(values)) != len(values):
        raise ConfigError(f"{GROUP}.{key} must not repeat a value, got {values}")
    return values


def _parse_grid(cfg, sigma_0: float) -> SigmaSettings:
    """``grid``: one data-independent training sigma and a finite grid of test sigmas below it."""
    sigma_train = _float(cfg, "sigma_train", required=True)
    if sigma_train <= 0:
        raise ConfigError(f"{GROUP}.sigma_train must be > 0, got {sigma_train:g}")
    values = _sigma_list(cfg, "test_sigmas")
    for v in values:
        if v > sigma_train:
            raise ConfigError(f"{GROUP}.test_sigmas must all be <= sigma_train ({sigma_train:g}), got {v:g}")
    selection = _read(cfg, "selection")
    selection = "union" if selection is None else selection
    if selection not in SELECTIONS:
        raise ConfigError(f"{GROUP}.selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
    n_sel = _read(cfg, "selection_members")
    n_sel = 0 if n_sel is None else n_sel
    if isinstance(n_sel, bool) or not isinstance(n_sel, int) or n_sel < 0:
        raise ConfigError(f"{GROUP}.selection_members must be an integer >= 0, got {n_sel!r}")
    if selection == "separate" and n_sel < 1:
        raise ConfigError(f"{GROUP}.selection_members must be >= 1 with selection=separate, got {n_sel}")
    return SigmaSettings(name="grid", sigma_0=sigma_0, sigma_min=None, sigma_max=None, sigma_train=sigma_train,
                         test_sigmas=tuple(values), selection=selection, selection_members=n_sel)


def _parse_grid_ensembles(cfg, sigma_0: float) -> SigmaSettings:
    """``grid_ensembles``: one ensemble per data-independent training sigma; each ensemble tested at
    its own sigma (``test_sigmas`` null) or at every listed test sigma <= its training sigma."""
    trains = _sigma_list(cfg, "sigma_trains")
    tests: list[float] = []
    if _read(cfg, "test_sigmas") is not None:
        tests = _sigma_list(cfg, "test_sigmas")
        for t in trains:
            if not any(s <= t for s in tests):
                raise ConfigError(f"{GROUP}.test_sigmas has no value <= the training sigma {t:g} of sigma_trains")
    selection = _read(cfg, "selection")
    selection = "union" if selection is None else selection
    if selection != "union":
        raise ConfigError(f"{GROUP}.selection must be union for grid_ensembles (every ensemble estimates), "
                          f"got {selection!r}")
    return SigmaSettings(name="grid_ensembles", sigma_0=sigma_0, sigma_min=None, sigma_max=None,
                         sigma_train=min(trains), sigma_trains=tuple(trains), test_sigmas=tuple(tests),
                         selection="union", selection_members=0)
