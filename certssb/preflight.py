"""Compose and parse the config before Hydra starts, to report bad input in one line, before any work.

Hydra's own messages for an unknown option, a bad override or a missing key span several lines.
The preflight reads the command line with Hydra's own argument parser, composes the same config
with the compose API, parses it into the run's settings (:func:`certssb.config.parse_run`, the
one place values are checked) and turns a failure into one line naming the key. The job then
reuses those settings. Flags that do not run a job (``--help``, ``--cfg``, ``--info``, ...) are
left to Hydra. A multirun (``-m``) is composed with each swept value replaced by its first one and
every swept option name checked, so a misspelt key or option fails before the sweep starts; the
values of each job are parsed in the job (a bad one fails that job alone).
"""

from __future__ import annotations

from pathlib import Path

from certssb.config import first_line


def _describe(exc: BaseException) -> str:
    from hydra.errors import MissingConfigException

    if isinstance(exc, MissingConfigException):
        return _missing_option(exc)
    parts = [first_line(exc)]
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        line = first_line(cause)
        if line and line not in parts:
            parts.append(line)
        cause = cause.__cause__ or cause.__context__
    message = ": ".join(parts)
    if "is not in struct" in message or "Could not override" in message:
        message += " (check the key's spelling; `--cfg job` prints every key)"
    return message


def _missing_option(exc) -> str:
    """``attack=badnet is not an option of attack; did you mean attack=badnets? (options: ...)``."""
    from certssb.catalog import did_you_mean

    missing = str(getattr(exc, "missing_cfg_file", "") or "")
    options = sorted(o for o in (getattr(exc, "options", None) or []) if not o.split("/")[-1].startswith("_"))
    head = first_line(exc)
    if "/" not in missing:
        return head.rstrip(".") + (f"; available: {', '.join(options)}" if options else "")
    group, _, name = missing.rpartition("/")
    where = head.split(":", 1)[0] if head.startswith("In '") and not head.startswith("In 'config'") else ""
    if not options:
        return f"{where + ': ' if where else ''}{group} has no option {name} (no {missing}.yaml on the search path)"
    hint = did_you_mean(name, options, render=lambda c: f"{group}={c}")
    text = f"{group}={name} is not an option of {group}{hint} (options: {', '.join(options)})"
    return f"{where}: {text}" if where else text


def _unknown_key(exc: BaseException) -> str | None:
    """The key of Hydra's ``Could not override 'KEY'`` (a key that is not in the config), else None."""
    import re

    text = " ".join(first_line(e) for e in (exc, exc.__cause__) if e is not None)
    found = re.search(r"Could not override '([^']+)'", text)
    if found and ("not in struct" in str(exc.__cause__) or "not in '" in str(exc.__cause__)):
        return found.group(1)
    return None


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _suggest_key(key: str, overrides: list[str], compose_without) -> str | None:
    """One line for an override of a key the config does not have, with the closest real key.

    ``compose_without(key)`` composes the same config without that override (to read the keys that
    do exist); the option a group's settings come from is named (``ensemble=default``)."""
    from omegaconf import DictConfig, OmegaConf

    from certssb.catalog import did_you_mean

    given = next((o.split("=", 1)[1] for o in reversed(overrides) if "=" in o and _override_key(o) == key), None)
    try:
        cfg = compose_without(key)
    except Exception:
        return None
    parts = key.split(".")
    top = [k for k in cfg.keys()]
    groups = [g for g in top if isinstance(cfg.get(g), DictConfig) and g in cfg.hydra.runtime.choices]
    if len(parts) == 1 or OmegaConf.select(cfg, parts[0], default=None) is None:
        head = parts[0]
        rest = ".".join(parts[1:])
        if len(parts) == 1:
            # a misspelt group (atack=badnets) or a top-level setting (sed=1)
            choices = [*(f"{g}=" for g in cfg.hydra.runtime.choices if not g.startswith("hydra")), *top]
            found = did_you_mean(head, [c.rstrip("=") for c in choices])
            if found:
                fixed = found[len("; did you mean "):-1]
                found = "; did you mean " + " or ".join(
                    f"{c}={given}" if given is not None else c for c in fixed.split(" or ")) + "?"
            return f"{head} is not a config group or top-level setting{found} (`--help` lists the groups)"
        found = did_you_mean(head, top, render=lambda c: f"{c}.{rest}")
        return f"{key}: {head} is not a config group or setting{found}"
    parent_key = ".".join(parts[:-1])
    parent = OmegaConf.select(cfg, parent_key, default=None)
    if not isinstance(parent, DictConfig):
        return f"{key}: {parent_key} is a value, not a group of settings (set it with {parent_key}=VALUE)"
    settings = [k for k in parent.keys() if k != "_target_"]
    group = parts[0]
    if group in groups:
        owner = f"{group}={cfg.hydra.runtime.choices[group]}"
        if len(parts) > 2:
            owner += f" (under {parent_key})"
    else:
        owner = parent_key
    hint = did_you_mean(parts[-1], settings, render=lambda c: f"{parent_key}.{c}")
    listing = "" if hint else f"; its settings: {', '.join(settings)}"
    return f"{key} is not a setting of {owner}{hint}{listing}"


def _given(overrides: list[str], key: str) -> str | None:
    values = [o.split("=", 1)[1] for o in overrides if o.lstrip("+~").startswith(key + "=")]
    return values[-1] if values and "${" not in values[-1] else None


def _unwritable_output_dir(overrides: list[str], multirun: bool) -> str | None:
    """A one-line reason if the run's or sweep's folder given on the command line cannot be written."""
    from certssb.run_record import check_writable_target

    given = _given(overrides, "hydra.sweep.dir" if multirun else "hydra.run.dir")
    return check_writable_target(given) if given else None


#: the settings the preflight parsed, with the plain config they came from (reused by the job)
PARSED: dict = {}


def preflight(argv: list[str], conf_dir: str) -> str | None:
    """A one-line message if the run's config cannot be composed or parsed; None if it can (or is
    not a single run)."""
    from certssb.config import parse_run
    from certssb.errors import CertSSBError

    from hydra import compose, initialize_config_dir
    from hydra._internal.utils import get_args_parser
    from hydra.core.global_hydra import GlobalHydra

    try:
        args = get_args_parser().parse_args(argv)
    except SystemExit:  # argparse already printed its usage line
        raise
    if args.help or args.hydra_help or args.info or args.shell_completion or args.experimental_rerun:
        return None
    compose_only = bool(args.cfg)  # --cfg prints the composed config: a misspelt name still gets one line
    unwritable = None if compose_only else _unwritable_output_dir(list(args.overrides), bool(args.multirun))
    if unwritable is not None:
        return unwritable
    if args.config_path:
        return None
    directory = str(Path(args.config_dir).resolve()) if args.config_dir else conf_dir
    overrides = list(args.overrides)
    multirun = bool(args.multirun)
    composed = overrides
    if multirun:  # the names on the command line are checked; each job's values are parsed in the job
        composed = _first_values(overrides)
        if composed is None:
            return None
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=directory, version_base="1.3"):
            cfg = compose(config_name=args.config_name or "config", overrides=composed,
                          return_hydra_config=True)
            if multirun:
                return _unknown_sweep_option(overrides)
            if compose_only or str(cfg.hydra.get("mode")) == "MULTIRUN":
                return None
            settings = parse_run(cfg)
            PARSED.update(settings=settings)
    except CertSSBError as exc:
        return str(exc)
    except Exception as exc:  # Hydra wraps composition errors in several exception types
        if type(exc).__module__.startswith(("hydra", "omegaconf")) or isinstance(exc, (ValueError, KeyError)):
            key = _unknown_key(exc)
            if multirun and not _names_a_command_line_override(exc, key, composed):
                return None  # e.g. a group the sweeper's own params fill: Hydra composes it per job
            if key is not None:
                suggestion = _suggest_key(key, overrides, lambda k: _compose_without(
                    directory, args.config_name or "config", composed, k))
                if suggestion:
                    return suggestion
            message = _describe(exc)
            if "Ambiguous value for argument" in message:
                message += " (add -m to run every value: a sweep)"
            return message
        raise
    finally:
        GlobalHydra.instance().clear()
    return None


def _listed(override) -> bool:
    """A sweep whose values are listed (a,b / choice / range), not a glob or an interval."""
    from hydra.core.override_parser.types import ValueType

    return override.is_discrete_sweep() and override.value_type != ValueType.GLOB_CHOICE_SWEEP


def _first_values(overrides: list[str]) -> list[str] | None:
    """The overrides with every comma/choice/range sweep replaced by its first value; None with a
    glob or interval sweep (Optuna's search space) or overrides that cannot be read (Hydra reports)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    out = []
    try:
        for override in OverridesParser.create().parse_overrides(overrides):
            if not override.is_sweep_override():
                out.append(override.input_line)
            elif _listed(override):
                first = next(iter(override.sweep_string_iterator()), None)
                if first is None:
                    return None
                out.append(f"{override.get_key_element()}={first}")
            else:  # no first value to stand for the sweep's jobs: leave the sweep to Hydra
                return None
    except Exception:
        return None
    return out


def _names_a_command_line_override(exc: BaseException, key: str | None, overrides: list[str]) -> bool:
    """Whether a composition error is about a key or option the command line names."""
    from hydra.errors import MissingConfigException

    keys = {_override_key(o) for o in overrides}
    if key is not None:
        return key in keys
    if isinstance(exc, MissingConfigException):
        group, _, name = str(getattr(exc, "missing_cfg_file", "") or "").rpartition("/")
        return any(_override_key(o) == group and o.split("=", 1)[-1] == name for o in overrides)
    return False


def _unknown_sweep_option(overrides: list[str]) -> str | None:
    """``attack=onepixel,badnet``: the first swept value that is no option of its group, in one line."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from certssb.catalog import did_you_mean

    loader = GlobalHydra.instance().config_loader()
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:
        return None
    for override in parsed:
        group = override.key_or_group
        if not (override.is_sweep_override() and _listed(override)):
            continue
        if override.package is not None or not loader.repository.group_exists(group):
            continue
        options = sorted(o for o in loader.get_group_options(group) if not o.split("/")[-1].startswith("_"))
        for value in override.sweep_string_iterator():
            if value not in options:
                hint = did_you_mean(value, options, render=lambda c: f"{group}={c}")
                return f"{group}={value} is not an option of {group}{hint} (options: {', '.join(options)})"
    return None


def _compose_without(directory: str, config_name: str, overrides: list[str], key: str):
    """The config composed without the overrides of ``key`` (Hydra's state restored afterwards)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    kept = [o for o in overrides if _override_key(o) != key]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=directory, version_base="1.3"):
            return compose(config_name=config_name, overrides=kept, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def parsed_settings(cfg):
    """The job's settings: the preflight's when they came from the same config, else parsed now."""
    from certssb.config import parse_run, plain_config

    settings = PARSED.get("settings")
    if settings is not None:
        try:
            if plain_config(cfg) == settings.config:
                return settings
        except Exception:  # a value that only resolves inside the job (e.g. ${hydra:...})
            pass
    return parse_run(cfg)
