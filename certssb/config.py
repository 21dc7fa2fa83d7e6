"""Typed settings: each config option's schema is a dataclass beside its code; a run's config is
parsed and validated once, at the entry point, into :class:`RunSettings`.

An option's yaml (``conf/<group>/<option>.yaml``) names its settings class with ``_target_`` and
holds every value; the class declares the types (fields default to ``MISSING``: values live in
the yaml only) and the checks (``check``), and carries the methods that build the option (an
attack's trigger, a dataset's loader, a model). A user adds an option with one module and one
yaml in their own config directory, without editing certssb (docs/extending.md).

This module imports neither torch nor any option's code: classes are imported when a config is
parsed, so ``--cfg job`` and ``--help`` stay fast.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn, Optional

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from certssb.errors import ConfigError

#: the config groups of a run, in the order of the method's steps
GROUPS = ("dataset", "attack", "model", "sigma_optimiser", "ensemble", "certifier", "logger")


@dataclass
class Option:
    """Base of every option's settings: ``name`` plus what subclasses declare.

    Subclasses are dataclasses whose fields are left ``MISSING`` (the option's yaml gives the
    values); ``check`` raises :class:`ConfigError` through :meth:`fail` with one line naming the key.
    """

    config_group: ClassVar[str] = ""
    #: keys that change how a run executes or is logged, not its results: left out of the run's
    #: fingerprint (resume) and of sweep folder names
    execution_keys: ClassVar[tuple] = ()
    name: str = MISSING

    def check(self, run: "RunSettings") -> None:
        """Range and cross-group checks the types cannot express (override; call super)."""

    def fail(self, key: str, message: str) -> NoReturn:
        raise ConfigError(f"{self.config_group}.{key} {message}")

    def fail_option(self, message: str) -> NoReturn:
        """A one-line error about the choice of this option itself (``<group>=<name> <message>``)."""
        raise ConfigError(f"{self.config_group}={self.name} {message}")

    # small checks shared by every option
    def require_range(self, key: str, low: float | None = None, high: float | None = None,
                      low_open: bool = False, high_open: bool = False) -> None:
        check_range(f"{self.config_group}.{key}", getattr(self, key), low, high, low_open, high_open)

    def require_choice(self, key: str, allowed: tuple[str, ...]) -> None:
        check_choice(f"{self.config_group}.{key}", getattr(self, key), allowed)

    def plain(self) -> dict:
        """The settings as plain Python values (for JSON, W&B and fingerprints)."""
        return dataclasses.asdict(self)

    def results_plain(self) -> dict:
        """:meth:`plain` without the :attr:`execution_keys` (what determines the results)."""
        return {k: v for k, v in self.plain().items() if k not in self.execution_keys}


def check_range(key: str, value: Any, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> None:
    """Raise ``ConfigError("<key> must be in [low, high]; got v")`` unless ``value`` is a finite number in range."""
    if value is None or isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{key} must be a number; got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{key} must be finite; got {value!r}")
    bad = (low is not None and (value < low or (low_open and value == low))) or (
        high is not None and (value > high or (high_open and value == high)))
    if bad:
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ConfigError(f"{key} must be in {'(' if low_open else '['}{lo}, {hi}{')' if high_open else ']'}; got {value!r}")


def check_int(key: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``, else ``ConfigError("<key> must be an integer in [low, high]; got v")``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        interval = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ConfigError(f"{key} must be an integer in {interval}; got {value!r}")
    check_range(key, value, low, high)
    return int(value)


def check_choice(key: str, value: Any, allowed) -> Any:
    """``value`` if it is one of ``allowed``, else ``ConfigError("<key> must be one of a, b; got v")``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(map(str, allowed))}; got {value!r}")
    return value


@dataclass
class Undefended:
    """The undefended reference: one model trained on the poisoned set without noise."""

    enabled: bool = MISSING
    epochs: Optional[int] = MISSING  # null = ensemble.epochs


@dataclass
class TopLevel:
    """Keys of ``conf/config.yaml`` outside the groups (values live there)."""

    seed: int = MISSING
    force: bool = MISSING
    cpu_threads: Any = MISSING
    optimized_metric: str = MISSING  # the summary value a non-basic sweeper (Optuna) optimises
    undefended: Undefended = field(default_factory=Undefended)


@dataclass
class RunSettings:
    """A run's parsed settings: one option per group plus the top-level keys."""

    dataset: Any
    attack: Any
    model: Any
    sigma_optimiser: Any
    ensemble: Any
    certifier: Any
    logger: Any
    seed: int
    force: bool
    cpu_threads: Any
    optimized_metric: str
    undefended: Undefended
    config: dict  # the resolved config as composed (without ``hydra`` and ``_target_`` keys)

    def option(self, group: str) -> Option:
        return getattr(self, group)


# ---------------------------------------------------------------------------------------------
# parsing


def first_line(exc: BaseException | str) -> str:
    """The first non-empty line of an exception's text."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return str(exc).strip() or type(exc).__name__


def _describe_type(annotation: Any) -> str:
    """A reader's name for a field's type: ``an integer``, ``a list of numbers``, ``null or ...``."""
    import typing

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return "null or " + (_describe_type(inner[0]) if len(inner) == 1 else "a value")
    if origin in (list, typing.List) or annotation in (list, typing.List):
        return f"a list of {_describe_type(args[0]).split(' ', 1)[1]}s" if args else "a list"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    if annotation in names:
        return names[annotation]
    if dataclasses.is_dataclass(annotation):
        return "a mapping of its keys"
    return "a value of its documented kind"


def _field_type(cls: type, path: str) -> Any:
    """The annotation of the (possibly nested) field ``a.b`` of dataclass ``cls``; None if unknown."""
    import typing

    annotation: Any = cls
    for part in path.split("."):
        if not dataclasses.is_dataclass(annotation):
            return None
        annotation = typing.get_type_hints(annotation).get(part)
        if annotation is None:
            return None
    return annotation


def _omegaconf_message(group: str, exc: OmegaConfBaseException, cls: type) -> str:
    """``<group>.<key> <what is wrong>`` from an OmegaConf validation error, on one line."""
    key = str(getattr(exc, "full_key", None) or "")
    where = f"{group}.{key}" if group and key else (key or group)
    kind = type(exc).__name__
    text = first_line(getattr(exc, "msg", None) or exc)
    if kind in ("ConfigKeyError", "ConfigAttributeError") or "not in" in text:
        return _unknown_setting(group, key, where, cls)
    if kind == "MissingMandatoryValue":
        return f"{where} is missing: set it in the option's yaml or on the command line"
    annotation = _field_type(cls, key) if key else None
    value = getattr(exc, "value", None)
    want = f"; expected {_describe_type(annotation)}" if annotation is not None else ""
    shown = f"got {value!r}" if value is not None else text.replace("$VALUE", "?").replace("$VALUE_TYPE", "?")
    return f"{where} has the wrong type: {shown}{want}"


def _unknown_setting(group: str, key: str, where: str, cls: type) -> str:
    """``<group>.<key> is not a setting of this option; did you mean <group>.<closest>? its settings: ...``."""
    from certssb.catalog import did_you_mean

    parent, _, leaf = key.rpartition(".")
    owner = _field_type(cls, parent) if parent else cls
    if not dataclasses.is_dataclass(owner):
        owner = cls
    known = [f.name for f in dataclasses.fields(owner)]
    prefix = ".".join(p for p in (group, parent) if p)
    render = (lambda c: f"{prefix}.{c}") if prefix else (lambda c: c)
    if not group:  # a top-level key: perhaps a misspelt group (+atack=badnets)
        hint = did_you_mean(leaf or key, [*GROUPS, *known], render=render)
        return f"{where} is not a config group or top-level setting{hint} (top-level settings: {', '.join(known)})"
    hint = did_you_mean(leaf or key, known, render=render)
    return f"{where} is not a setting of this option{hint} (its settings: {', '.join(known)})"


def locate_option(group: str, target: str) -> type:
    """The settings class named by an option's ``_target_`` (a dataclass subclass of :class:`Option`)."""
    import importlib

    module_name, _, attr = str(target).rpartition(".")
    if not module_name:
        raise ConfigError(f"{group}._target_={target!r} must be a dotted path module.Class")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(f"{group}._target_={target!r} cannot be imported: {first_line(exc)}") from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise ConfigError(f"{group}._target_={target!r}: module {module_name} has no {attr}")
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls) and issubclass(cls, Option)):
        raise ConfigError(f"{group}._target_={target!r} must name a dataclass that subclasses certssb.config.Option")
    return cls


def parse_option(group: str, node: Any) -> Option:
    """Parse one group's composed node into its option's typed settings (no checks yet)."""
    if not isinstance(node, (DictConfig, dict)):
        raise ConfigError(f"{group} must be an option of the group (e.g. {group}=NAME); got {node!r}")
    values = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    target = values.pop("_target_", None)
    if target is None:
        raise ConfigError(f"{group} has no _target_: an option's yaml names its settings class with _target_")
    cls = locate_option(group, target)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), values)
        settings = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ConfigError(_omegaconf_message(group, exc, cls)) from None
    owner = type(settings).config_group or "group-less"
    if owner != group:
        raise ConfigError(f"{group}._target_={target!r} is a {owner} option, not a {group} option")
    return settings


def plain_config(cfg: DictConfig) -> dict:
    """The composed config as plain Python values, without ``hydra`` and ``_target_`` keys."""
    try:
        if "hydra" in cfg:
            cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
        plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except OmegaConfBaseException as exc:
        raise ConfigError(first_line(exc)) from None
    plain.pop("hydra", None)
    return _drop_targets(plain)


def parse_run(cfg: DictConfig | RunSettings) -> RunSettings:
    """Parse and check a composed config once; raises :class:`ConfigError` (one line) on bad input."""
    if isinstance(cfg, RunSettings):
        return cfg
    plain = plain_config(cfg)
    options = {group: parse_option(group, cfg.get(group)) for group in GROUPS}
    top_values = {k: v for k, v in plain.items() if k not in GROUPS}
    try:
        top = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TopLevel), top_values))
    except OmegaConfBaseException as exc:
        raise ConfigError(_omegaconf_message("", exc, TopLevel)) from None
    run = RunSettings(**options, seed=top.seed, force=top.force, cpu_threads=top.cpu_threads,
                      optimized_metric=top.optimized_metric, undefended=top.undefended, config=plain)
    _check_top(run)
    for group in GROUPS:
        run.option(group).check(run)
    return run


def _check_top(run: RunSettings) -> None:
    epochs = run.undefended.epochs
    if epochs is not None and epochs < 1:
        raise ConfigError(f"undefended.epochs must be null or >= 1; got {epochs}")
    threads = run.cpu_threads
    if threads is not None and threads != "auto" and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"cpu_threads must be auto, null or an integer >= 1; got {threads!r}")


def to_plain(value: Any) -> Any:
    """Plain-Python copy of settings or a config node, without ``_target_`` keys (for records)."""
    if isinstance(value, RunSettings):
        top = {k: v for k, v in value.config.items() if k not in GROUPS}
        return _drop_targets({**top, **{group: value.option(group).plain() for group in GROUPS}})
    if isinstance(value, Option):
        value = value.plain()
    elif isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True, throw_on_missing=False)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return _drop_targets(value)


def _drop_targets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_targets(v) for k, v in value.items() if k != "_target_"}
    if isinstance(value, list):
        return [_drop_targets(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# one option from its yaml (tests and tools)


def _option_node(group: str, name: str) -> DictConfig:
    from certssb.resources import conf_dir

    path = conf_dir() / group / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"{group}={name} is not an option (no {path})")
    node = OmegaConf.load(path)
    merged, self_merged = OmegaConf.create(), False
    for entry in node.pop("defaults", None) or []:
        if entry == "_self_":
            merged, self_merged = OmegaConf.merge(merged, node), True
        elif isinstance(entry, str):
            merged = OmegaConf.merge(merged, _option_node(group, entry))
        # a mapping entry (``override /other_group@...: option``) chooses another group's option
    return merged if self_merged else OmegaConf.merge(merged, node)


def load_option(group: str, name: str, **overrides: Any) -> Option:
    """The settings of ``conf/<group>/<name>.yaml`` with ``overrides`` applied (checks not run).

    Follows the yaml's own ``defaults`` list within the group (e.g. ``for_digits`` -> ``mlp``);
    values that interpolate other groups must be given in ``overrides``.
    """
    node = OmegaConf.merge(_option_node(group, name), OmegaConf.create(overrides))
    return parse_option(group, node)
