"""Config schemas (registered in Hydra's ConfigStore) and validation with one-line errors.

The YAML files under ``conf/`` extend these schemas (``defaults: [_schema, _self_]``), so a
value of the wrong type or an unknown key is rejected when Hydra composes the config. Range
checks that a schema cannot express live in :func:`validate`, which runs before any work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf

from certssb.attack.build import ATTACKS
from certssb.dataset.info import DATASETS as _DATASET_TABLE
from certssb.errors import ConfigError
from certssb.model import MODEL_NAMES
from certssb.sigma_optimiser.config import RULES as SIGMA_RULES
from certssb.sigma_optimiser.config import parse_sigma_config

# The packages own their names; the config checks against them.
DATASETS = tuple(_DATASET_TABLE)
MODELS = tuple(MODEL_NAMES)
SIGMA_OPTIMISERS = SIGMA_RULES
CERTIFIERS = ("rab", "cohen", "storage_update")
BOUND_MODES = ("soft", "hard")
PB_MODES = ("auto", "complement", "bonferroni")
MEMORY_ORDERS = ("index", "shuffle")
LOGGERS = ("wandb", "none")
CORNERS = ("bottom_right", "bottom_left", "top_right", "top_left")
DEVICES = ("auto", "cpu", "cuda")
VECTORISE = ("auto", "true", "false")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class DatasetConfig:
    name: str = "digits"
    data_dir: Optional[str] = None
    download: bool = False
    classes: Optional[List[int]] = None
    train_size: Optional[int] = None
    test_size: Optional[int] = None
    test_fraction: float = 0.2


@dataclass
class AttackConfig:
    name: str = "none"
    poison_rate: float = 0.0
    target: int = 0
    delta: Optional[float] = None
    positions: Optional[Any] = None
    patch_size: int = 3
    corner: str = "bottom_right"
    color: Any = field(default_factory=lambda: [1.0])
    pattern_seed: int = 0


@dataclass
class ModelConfig:
    name: str = "digits_cnn"
    hidden: List[int] = field(default_factory=lambda: [128])


@dataclass
class SigmaConfig:
    name: str = "fixed"
    sigma_0: float = 0.25
    n_draws: int = 32
    lr: float = 0.04
    iterations: int = 100
    clip_low: float = 0.02
    clip_high: float = 0.98
    sigma_min: float = 0.05
    sigma_max: float = 1.0
    batch_size: int = 256
    surrogate_epochs: Optional[int] = None
    device: str = "auto"


@dataclass
class EnsembleConfig:
    n_members: int = 200
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    vectorise: Any = "auto"
    group_size: Optional[int] = None
    eval_batch_size: int = 1024
    device: str = "auto"
    precision: str = "auto"
    member_range: Optional[List[int]] = None
    checkpoint_dir: Optional[str] = None
    deterministic: bool = False


@dataclass
class MemoryConfig:
    enabled: bool = False
    order: str = "index"
    order_seed: int = 0
    shared: bool = False


@dataclass
class CertifierConfig:
    name: str = "rab"
    mode: str = "soft"
    alpha: float = 0.001
    radii: List[float] = field(default_factory=lambda: [0.25 * i for i in range(11)])
    pb_mode: str = "auto"
    selection_correction: bool = True
    memory: MemoryConfig = field(default_factory=MemoryConfig)


@dataclass
class LoggerConfig:
    name: str = "none"
    project: str = "certssb"
    entity: Optional[str] = None
    mode: str = "offline"
    group: Optional[str] = None
    job_type: Optional[str] = None
    tags: List[str] = field(default_factory=list)


@dataclass
class UndefendedConfig:
    enabled: bool = True
    epochs: Optional[int] = None


def register_schemas() -> None:
    """Register every group's schema under the name ``_schema`` in Hydra's ConfigStore."""
    cs = ConfigStore.instance()
    for group, node in (
        ("dataset", DatasetConfig),
        ("attack", AttackConfig),
        ("model", ModelConfig),
        ("sigma_optimiser", SigmaConfig),
        ("ensemble", EnsembleConfig),
        ("certifier", CertifierConfig),
        ("logger", LoggerConfig),
    ):
        cs.store(group=group, name="_schema", node=node)


def _fail(key: str, message: str) -> None:
    raise ConfigError(f"{key} {message}")


def _check_choice(cfg: DictConfig, key: str, allowed: tuple[str, ...]) -> None:
    value = OmegaConf.select(cfg, key)
    if str(value) not in allowed:
        _fail(key, f"must be one of {', '.join(allowed)}; got {value!r}")


def _check_range(cfg: DictConfig, key: str, low: float | None, high: float | None,
                 low_open: bool = False, high_open: bool = False) -> None:
    value = OmegaConf.select(cfg, key)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(key, f"must be a number; got {value!r}")
    if not math.isfinite(value):
        _fail(key, f"must be finite; got {value!r}")
    bad = (low is not None and (value < low or (low_open and value == low))) or (
        high is not None and (value > high or (high_open and value == high)))
    if bad:
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        interval = f"{'(' if low_open else '['}{lo}, {hi}{')' if high_open else ']'}"
        _fail(key, f"must be in {interval}; got {value!r}")


def num_classes_for(cfg: DictConfig) -> int:
    """Number of classes the run's dataset config yields (after class selection)."""
    from certssb.dataset import dataset_info

    _, n_all, _ = dataset_info(cfg.dataset.name)
    classes = cfg.dataset.classes
    if classes is None:
        return n_all
    return len(classes)


# (key, allowed values) checked by validate()
CHOICES = (
    ("dataset.name", DATASETS), ("attack.name", ATTACKS), ("model.name", MODELS),
    ("sigma_optimiser.name", SIGMA_OPTIMISERS), ("certifier.name", CERTIFIERS),
    ("certifier.mode", BOUND_MODES), ("certifier.pb_mode", PB_MODES),
    ("certifier.memory.order", MEMORY_ORDERS), ("logger.name", LOGGERS), ("attack.corner", CORNERS),
    ("ensemble.device", DEVICES), ("ensemble.precision", PRECISIONS), ("sigma_optimiser.device", DEVICES),
)


def validate(cfg: DictConfig) -> None:
    """Check ranges and choices that the schemas cannot; raise ConfigError on the first problem."""
    for key, allowed in CHOICES:
        _check_choice(cfg, key, allowed)
    if str(cfg.ensemble.vectorise).lower() not in VECTORISE:
        _fail("ensemble.vectorise", f"must be one of {', '.join(VECTORISE)}; got {cfg.ensemble.vectorise!r}")

    # dataset
    from certssb.dataset import dataset_info

    _, n_all, _ = dataset_info(cfg.dataset.name)
    classes = cfg.dataset.classes
    if classes is not None:
        if len(classes) < 2:
            _fail("dataset.classes", f"must list at least two classes; got {list(classes)}")
        if len(set(classes)) != len(classes):
            _fail("dataset.classes", f"must not repeat a class; got {list(classes)}")
        for c in classes:
            if not 0 <= c < n_all:
                _fail("dataset.classes", f"must be class ids in [0, {n_all - 1}] for {cfg.dataset.name}; got {c}")
    for key in ("dataset.train_size", "dataset.test_size"):
        value = OmegaConf.select(cfg, key)
        if value is not None and value < 1:
            _fail(key, f"must be null or >= 1; got {value}")
    _check_range(cfg, "dataset.test_fraction", 0.0, 1.0, low_open=True, high_open=True)

    # attack
    n_classes = num_classes_for(cfg)
    _check_range(cfg, "attack.poison_rate", 0.0, 1.0, high_open=True)
    if not 0 <= cfg.attack.target < n_classes:
        _fail("attack.target", f"must be a class index in [0, {n_classes - 1}]; got {cfg.attack.target}")
    if cfg.attack.name in ("onepixel", "fourpixel", "blending"):
        _check_range(cfg, "attack.delta", 0.0, None, low_open=True)
    if cfg.attack.name == "badnets" and cfg.attack.patch_size < 1:
        _fail("attack.patch_size", f"must be >= 1; got {cfg.attack.patch_size}")

    # sigma optimiser: the sigma package owns its rules
    parse_sigma_config(cfg.sigma_optimiser)

    # ensemble
    _check_range(cfg, "ensemble.n_members", 1, None)
    _check_range(cfg, "ensemble.epochs", 1, None)
    _check_range(cfg, "ensemble.batch_size", 1, None)
    _check_range(cfg, "ensemble.eval_batch_size", 1, None)
    _check_range(cfg, "ensemble.lr", 0.0, None, low_open=True)
    if cfg.ensemble.group_size is not None and cfg.ensemble.group_size < 1:
        _fail("ensemble.group_size", f"must be null or >= 1; got {cfg.ensemble.group_size}")
    rng = cfg.ensemble.member_range
    if rng is not None:
        if len(rng) != 2 or not 0 <= rng[0] < rng[1] <= cfg.ensemble.n_members:
            _fail("ensemble.member_range",
                  f"must be [start, stop] with 0 <= start < stop <= ensemble.n_members ({cfg.ensemble.n_members}); got {list(rng)}")

    # certifier
    _check_range(cfg, "certifier.alpha", 0.0, 1.0, low_open=True, high_open=True)
    radii = list(cfg.certifier.radii)
    if not radii:
        _fail("certifier.radii", "must list at least one radius")
    if any((not isinstance(r, (int, float))) or isinstance(r, bool) or not math.isfinite(r) or r < 0 for r in radii):
        _fail("certifier.radii", f"must be non-negative finite numbers; got {radii}")
    if any(b <= a for a, b in zip(radii, radii[1:])):
        _fail("certifier.radii", f"must be strictly increasing; got {radii}")


def to_plain(cfg: DictConfig | ListConfig) -> Any:
    """Resolved plain-Python copy of a config (for JSON, W&B and fingerprints)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
