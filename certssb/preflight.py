"""Compose and parse the config before Hydra starts, to report bad input in one line, before any work.

Hydra's own messages for an unknown option, a bad override or a missing key span several lines.
The preflight reads the command line with Hydra's own argument parser, composes the same config
with the compose API, parses it into the run's settings (:func:`certssb.config.parse_run`, the
one place values are checked) and turns a failure into one line naming the key. The job then
reuses those settings. Flags that do not run a job (``--help``, ``--cfg``, ``--info``, ...) and
multiruns (each job is parsed on its own) are left to Hydra.
"""

from __future__ import annotations

from pathlib import Path

from certssb.config import first_line


def _describe(exc: BaseException) -> str:
    from hydra.errors import MissingConfigException

    if isinstance(exc, MissingConfigException):
        head = first_line(exc)
        options = getattr(exc, "options", None)
        if options:
            head = head.rstrip(".") + f"; available: {', '.join(sorted(options))}"
        return head
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
    if args.help or args.hydra_help or args.cfg or args.info or args.shell_completion or args.experimental_rerun:
        return None
    unwritable = _unwritable_output_dir(list(args.overrides), bool(args.multirun))
    if unwritable is not None:
        return unwritable
    if args.multirun or args.config_path:
        return None
    directory = str(Path(args.config_dir).resolve()) if args.config_dir else conf_dir
    overrides = list(args.overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=directory, version_base="1.3"):
            cfg = compose(config_name=args.config_name or "config", overrides=overrides,
                          return_hydra_config=True)
            if str(cfg.hydra.get("mode")) == "MULTIRUN":
                return None
            settings = parse_run(cfg)
            PARSED.update(settings=settings)
    except CertSSBError as exc:
        return str(exc)
    except Exception as exc:  # Hydra wraps composition errors in several exception types
        if type(exc).__module__.startswith(("hydra", "omegaconf")) or isinstance(exc, (ValueError, KeyError)):
            return _describe(exc)
        raise
    finally:
        GlobalHydra.instance().clear()
    return None


def parsed_settings(cfg):
    """The job's settings: the preflight's when they came from the same config, else parsed now."""
    from certssb.config import _plain_config, parse_run

    settings = PARSED.get("settings")
    if settings is not None:
        try:
            if _plain_config(cfg) == settings.config:
                return settings
        except Exception:  # a value that only resolves inside the job (e.g. ${hydra:...})
            pass
    return parse_run(cfg)
