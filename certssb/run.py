"""Hydra entry point: ``python -m certssb.run [overrides]``.

Thin on purpose: compose the config, parse it once into typed settings, hand them to
:func:`certssb.pipeline.run`. Errors caused by input (bad config values, absent data) end with
one line on stderr and exit code 2; in a multirun they fail only their own job. Nothing here
imports torch: ``--help`` and ``--cfg job`` stay fast.
"""

from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from certssb.errors import CertSSBError
from certssb.resources import conf_dir

CONF_DIR = str(conf_dir())
EXIT_USAGE = 2

log = logging.getLogger("certssb")


def _in_multirun() -> bool:
    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def hydra_main(cfg: DictConfig) -> dict | None:
    """Run one job; returns the summary dict (Hydra's return value in a multirun)."""
    from certssb.preflight import parsed_settings

    try:
        settings = parsed_settings(cfg)
        from certssb import pipeline

        return pipeline.run(settings)
    except CertSSBError as exc:
        if _in_multirun():  # fail this job only; the sweep goes on and exits 1 at the end
            log.error("error: %s", exc)
            from certssb.pipeline import output_dir_from_hydra
            from certssb.results import write_summary

            out = output_dir_from_hydra()
            failed = {"status": "failed", "error": str(exc), "output_dir": str(out)}
            try:
                write_summary(out / "summary.json", failed)
            except OSError as write_error:  # e.g. a read-only folder: the sweep counts it as failed anyway
                log.error("error: cannot write %s (%s)", out / "summary.json", write_error.strerror)
            return failed
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def main(argv: list[str] | None = None) -> None:
    """Console entry: report composition errors in one line, then run Hydra's main."""
    from certssb.preflight import preflight

    args = sys.argv[1:] if argv is None else argv
    message = preflight(args, CONF_DIR)
    if message is not None:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    hydra_main()


if __name__ == "__main__":
    main()
