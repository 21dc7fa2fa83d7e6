"""Compose and validate the config before Hydra starts, to report bad input in one line.

Hydra's own messages for an unknown option or a wrongly typed value span several lines; the
preflight composes the same config with the compose API and turns any failure into a single
line naming the key and what is allowed. Multirun sweeps are checked per job instead.
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import MissingConfigException
from omegaconf.errors import OmegaConfBaseException

from certssb.errors import CertSSBError
from certssb.run_record import check_writable_target

_SKIP_FLAGS = {"-m", "--multirun", "-h", "--help", "--hydra-help", "--info", "-i",
               "--shell-completion", "-sc", "--version", "--experimental-rerun"}
_VALUE_FLAGS = {"-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir", "-c", "--cfg",
                "-p", "--package", "--info", "-i"}


def _first_line(text: str) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return str(text).strip()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, MissingConfigException):
        head = _first_line(exc)
        options = getattr(exc, "options", None)
        if options:
            head = head.rstrip(".") + f"; available: {', '.join(sorted(options))}"
        return head
    parts = [_first_line(exc)]
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        line = _first_line(cause)
        if line and line not in parts:
            parts.append(line)
        cause = cause.__cause__ or cause.__context__
    message = ": ".join(parts)
    if "is not in struct" in message or "Could not override" in message:
        message += " (check the key's spelling; `--cfg job` prints every key)"
    return message


def parse_args(args: list[str]) -> tuple[bool, str | None, str | None, list[str]]:
    """Split Hydra's command line into (skip, config_dir, config_name, overrides)."""
    skip = False
    config_dir = config_name = None
    overrides: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        key, eq, val = arg.partition("=")
        if key in _SKIP_FLAGS:
            skip = skip or key not in ("--info", "-i")
        if key in _VALUE_FLAGS:
            value = val if eq else (args[i + 1] if i + 1 < len(args) else None)
            if not eq:
                i += 1
            if key in ("-cd", "--config-dir"):
                config_dir = value
            elif key in ("-cn", "--config-name"):
                config_name = value
            elif key in ("-cp", "--config-path"):
                skip = True  # relative to the app module: leave it to Hydra
            elif key in ("--info", "-i"):
                skip = True
        elif arg.startswith("-"):
            skip = skip or key in _SKIP_FLAGS
        else:
            overrides.append(arg)
        i += 1
    return skip, config_dir, config_name, overrides


def _given(overrides: list[str], key: str) -> str | None:
    values = [o.split("=", 1)[1] for o in overrides if o.lstrip("+~").startswith(key + "=")]
    return values[-1] if values and "${" not in values[-1] else None


def _unwritable_output_dir(overrides: list[str], multirun: bool) -> str | None:
    """A one-line reason if the run's or sweep's folder given on the command line cannot be written."""
    given = _given(overrides, "hydra.sweep.dir" if multirun else "hydra.run.dir")
    return check_writable_target(given) if given else None


def preflight(args: list[str], conf_dir: str) -> str | None:
    """Return a one-line error message if the run's config cannot be composed or is invalid."""
    from certssb.config import validate

    skip, config_dir, config_name, overrides = parse_args(args)
    multirun = "-m" in args or "--multirun" in args
    unwritable = _unwritable_output_dir(overrides, multirun)
    if unwritable is not None:
        return unwritable
    if skip:
        return None
    job_overrides = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    directory = str(Path(config_dir).resolve()) if config_dir else conf_dir
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=directory, version_base="1.3"):
            cfg = compose(config_name=config_name or "config", overrides=job_overrides,
                          return_hydra_config=True)
            sweep = str(cfg.hydra.get("mode")).endswith("MULTIRUN")  # a sweep file (RunMode.MULTIRUN)
            unwritable = check_writable_target(_given(overrides, "hydra.sweep.dir") or cfg.hydra.sweep.dir
                                               if sweep else cfg.hydra.run.dir)
            if unwritable is not None:
                return unwritable
            if str(cfg.hydra.get("mode")) == "MULTIRUN":
                return None
            validate(cfg)
    except CertSSBError as exc:
        return str(exc)
    except (MissingConfigException, OmegaConfBaseException, ValueError, KeyError) as exc:
        return _describe(exc)
    except Exception as exc:  # Hydra wraps composition errors in several exception types
        if type(exc).__module__.startswith(("hydra", "omegaconf")):
            return _describe(exc)
        raise
    finally:
        GlobalHydra.instance().clear()
    return None
