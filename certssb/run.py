"""Hydra entry point: ``python -m certssb.run [overrides]``.

Thin on purpose: compose the config, parse it once into typed settings, hand them to
:func:`certssb.pipeline.run`. Every failure ends with one line on stderr and a non-zero exit,
never a traceback on the console:

- errors caused by input (bad config values, absent data: :class:`CertSSBError`):
  ``error: <message>``, exit code 2;
- anything else (a bug, a bad weights file, out of memory, ...):
  ``error: <Type>: <message> (traceback in <output dir>/traceback.txt)``, exit code 1; the
  traceback goes to that file and to the job log. Out of memory names the knobs to lower.

A run that had started leaves ``summary.json`` saying ``failed``, the line and the exception
type (:func:`certssb.run_record.record_failure`). In a multirun a failed job fails alone: it
logs its line, writes its failed ``summary.json`` and returns that record; the other jobs run,
and :class:`certssb.callbacks.FailedJobsCallback` ends the sweep with
``error: K of M jobs failed; first: ...`` and exit code 1. Nothing here imports torch: ``--help``
and ``--cfg job`` stay fast.

The task function returns the summary dict, except under a non-basic sweeper (Optuna, e.g.
``hparams_search=sigma_optuna``), which needs a number: then it returns the summary's
``optimized_metric`` as a float (:func:`certssb.objective.optimized_value`). A failed job
returns its ``{"status": "failed", ...}`` record in both cases (the sweeper records a failed
trial).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from certssb.errors import CertSSBError
from certssb.helptext import register_resolvers
from certssb.resources import conf_dir
from certssb.run_record import RECORD_ATTR, failure_text, log_to_files, record_failure

register_resolvers()  # ${certssb_help:...} in the --help template (conf/config.yaml)

CONF_DIR = str(conf_dir())
EXIT_USAGE = 2  # bad input: a CertSSBError
EXIT_FAILED = 1  # any other exception

log = logging.getLogger("certssb")


#: Hydra's default sweeper: it takes whatever the task returns (the summary dict)
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def _in_multirun() -> bool:
    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


def sweeper_needs_a_number() -> bool:
    """True when a non-basic sweeper (Optuna, Nevergrad, Ax) runs the job: it must return a float."""
    try:
        hc = HydraConfig.get()
    except ValueError:  # called outside Hydra
        return False
    return hc.mode == RunMode.MULTIRUN and str(hc.sweeper.get("_target_", BASIC_SWEEPER)) != BASIC_SWEEPER


def _output_dir() -> Path:
    try:
        from certssb.pipeline import output_dir_from_hydra
    except Exception:  # the pipeline itself does not import (the failure being reported): Hydra's folder
        return Path(HydraConfig.get().runtime.output_dir)
    return output_dir_from_hydra()


def _record(exc: Exception, write: bool) -> dict:
    """``exc``'s failed record: the one the pipeline attached (the run had started and wrote it),
    else one made now (``summary.json`` written when ``write``; a traceback file when unexpected)."""
    record = getattr(exc, RECORD_ATTR, None)
    return record if record is not None else record_failure(_output_dir(), exc, write=write)


def _failed_job(exc: Exception, write: bool = True) -> dict:
    """Log a failed job of a multirun and return its record (``summary.json`` when ``write``)."""
    record = _record(exc, write)
    log.error("error: %s", failure_text(record))
    return record


def _fail_single_run(exc: Exception) -> None:
    """One line on stderr (and in the job log), then exit 2 for bad input, 1 for anything else."""
    line = f"error: {failure_text(_record(exc, write=False))}"
    log_to_files(logging.ERROR, line)
    print(line, file=sys.stderr)
    sys.exit(EXIT_USAGE if isinstance(exc, CertSSBError) else EXIT_FAILED)


def sweep_return(summary: dict, metric: str) -> float | dict | None:
    """What a non-basic sweeper receives: ``summary``'s ``metric`` as a float.

    A failed run's record is returned as it is; a metric that is null or not finite in a complete
    run gives None. Neither converts to a float, so the Optuna sweeper records a failed trial
    (NaN would stop the whole search: optuna refuses to be told NaN, and hydra-optuna-sweeper
    1.3 then fails while marking the trial failed). A path that names no number is a failed job
    whose complete summary.json stays on disk.
    """
    import math

    from certssb.objective import optimized_value

    if summary.get("status", "complete") != "complete":
        return summary
    try:
        value = optimized_value(summary, metric)
    except CertSSBError as exc:
        return _failed_job(exc, write=False)
    if not math.isfinite(value):
        log.warning("optimized_metric=%s is null in this run: the sweeper records a failed trial", metric)
        return None
    log.info("optimized_metric %s = %.6g", metric, value)
    return value


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def hydra_main(cfg: DictConfig) -> float | dict | None:
    """Run one job; returns the summary dict, or its ``optimized_metric`` under a non-basic sweeper."""
    from certssb.preflight import parsed_settings

    try:
        settings = parsed_settings(cfg)
        from certssb import pipeline

        summary = pipeline.run(settings)
    except Exception as exc:  # noqa: BLE001 - every failure is reported in one line
        if _in_multirun():  # fail this job only; the sweep goes on and exits 1 at the end
            return _failed_job(exc)
        _fail_single_run(exc)
    if sweeper_needs_a_number():
        return sweep_return(summary, settings.optimized_metric)
    return summary


SWEEP_KEY = "sweep"
SWEEPS_FOLDER = "multirun_sweeps"
_CONFIG_DIR_FLAGS = ("--config-dir", "-cd")
_CONFIG_NAME_FLAGS = ("--config-name", "-cn")


def _flag(arg: str, flags: tuple[str, ...]) -> str | None:
    """``--flag`` / ``-f`` -> ``""`` (value follows), ``--flag=VALUE`` -> ``VALUE``, else None."""
    for flag in flags:
        if arg == flag:
            return ""
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1:]
    return None


def expand_sweep(args: list[str]) -> list[str]:
    """Resolve the sweep shorthands before Hydra reads the command line.

    ``sweep=NAME`` becomes ``--config-dir <certssb's multirun_sweeps/> --config-name NAME`` (the
    sweep file is the primary config; works from any directory and from an installed wheel), and a
    ``--config-dir multirun_sweeps`` that is not a folder of the current directory means certssb's
    own. ``sweep=`` with an unknown name, twice, or together with ``--config-name`` raises a
    one-line :class:`ConfigError`.
    """
    from pathlib import Path

    from certssb import catalog
    from certssb.errors import ConfigError
    from certssb.resources import sweeps_dir

    out: list[str] = []
    sweeps = []
    has_name = False
    i = 0
    while i < len(args):
        arg = args[i]
        directory = _flag(arg, _CONFIG_DIR_FLAGS)
        if directory is not None:
            if directory == "" and i + 1 < len(args):
                i += 1
                directory = args[i]
            if Path(directory).name == SWEEPS_FOLDER and not Path(directory).is_dir() and not Path(directory).is_absolute():
                directory = str(sweeps_dir())
            out += [arg.split("=", 1)[0], directory]
        elif arg.startswith(SWEEP_KEY + "="):
            sweeps.append(arg.split("=", 1)[1])
        else:
            has_name = has_name or _flag(arg, _CONFIG_NAME_FLAGS) is not None
            out.append(arg)
        i += 1
    if not sweeps:
        return out
    names = catalog.sweep_names()
    if len(sweeps) > 1:
        raise ConfigError(f"sweep= is given {len(sweeps)} times ({', '.join(sweeps)}): run one sweep file at a time")
    (name,) = sweeps
    if name not in names:
        hint = catalog.did_you_mean(name, names, render=lambda c: f"sweep={c}")
        raise ConfigError(f"sweep={name} is not a sweep file{hint} (sweeps: {', '.join(names)}; "
                          f"python -m certssb.tools.sweeps describes them)")
    if has_name:
        raise ConfigError(f"sweep={name} names the primary config: leave out --config-name")
    return ["--config-dir", str(sweeps_dir()), "--config-name", name, *out]


def main(argv: list[str] | None = None) -> None:
    """Console entry: expand ``sweep=NAME``, report composition errors in one line, then run Hydra's main."""
    from certssb.preflight import preflight

    args = sys.argv[1:] if argv is None else argv
    try:
        expanded = expand_sweep(list(args))
    except CertSSBError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    message = preflight(expanded, CONF_DIR)
    if message is not None:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    if argv is not None or expanded != args:
        sys.argv = [sys.argv[0], *expanded]
    try:
        hydra_main()
    except BrokenPipeError:  # `--help | head`: the reader left; no traceback (the Python docs' recipe)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


if __name__ == "__main__":
    main()
