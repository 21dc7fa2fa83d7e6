"""Weights & Biases logger: resolved config, summary metrics, certified-accuracy curves.

Curves come sound variant first (``joint``); ``paper`` is titled as a test-time (evasion)
certificate. The certified accuracy against k poisoned samples is logged as ``poison/*`` over
``poison/k`` and as the table ``poison_count``.

Mode comes from ``logger.mode`` (``${oc.env:WANDB_MODE,offline}``): offline runs are written
under ``<output dir>/wandb/`` and can be uploaded later with ``wandb sync``. Runs of one sweep
share a ``group``; ``job_type`` is the method (``rab`` / ``cert-ssb``). The run is always
finished, also when the job fails.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from omegaconf import MISSING

from certssb.config import to_plain
from certssb.logger.base import LoggerSettings, RunLogger
from certssb.logger.flatten import curve_rows, poison_rows, summary_scalars
from certssb.plots import variant_label

log = logging.getLogger("certssb")


def _hydra_context() -> dict:
    try:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return {}
    mode = str(hc.mode)
    return {"multirun": mode.endswith("MULTIRUN"), "sweep_dir": str(hc.sweep.dir),
            "override_dirname": hc.job.override_dirname, "overrides": list(hc.overrides.task),
            "job_num": hc.job.get("num")}


class WandbLogger(RunLogger):
    """One W&B run per job, opened on construction and finished on exit."""

    def __init__(self, cfg, output_dir: Path, context: dict) -> None:
        import wandb

        self._wandb = wandb
        hydra_ctx = _hydra_context()
        method = context.get("method", "run")
        group = cfg.logger.group
        if group is None and hydra_ctx.get("multirun"):
            group = Path(hydra_ctx["sweep_dir"]).name
        config = to_plain(cfg)
        config["overrides"] = hydra_ctx.get("overrides", [])
        config["method"] = method
        name = hydra_ctx.get("override_dirname") or None
        kwargs = dict(project=cfg.logger.project, entity=cfg.logger.entity, group=group,
                      job_type=cfg.logger.job_type or method, tags=list(cfg.logger.tags) or None,
                      name=name, config=config, dir=str(output_dir), mode=str(cfg.logger.mode),
                      reinit="finish_previous")
        try:
            self.run = wandb.init(**kwargs)
        except Exception as exc:  # an unreachable server: keep the run locally
            if kwargs["mode"] != "online":
                raise
            log.warning("wandb online init failed (%s); logging offline instead", str(exc).splitlines()[0])
            kwargs["mode"] = "offline"
            self.run = wandb.init(**kwargs)
        self.run.define_metric("cert/radius")
        self.run.define_metric("cert/*", step_metric="cert/radius")
        self.run.define_metric("poison/k")
        self.run.define_metric("poison/*", step_metric="poison/k")

    def log_summary(self, summary: dict) -> None:
        wandb = self._wandb
        scalars = summary_scalars(summary)
        for key, value in scalars.items():
            self.run.summary[key] = value
        rows = curve_rows(summary)
        table = wandb.Table(columns=["split", "variant", "radius", "certified_accuracy"], data=rows)
        self.run.log({"curves": table})
        for split, curve in summary.get("curves", {}).items():
            variants = list(curve["certified_accuracy"])
            for i, r in enumerate(curve["radii"]):
                point = {"cert/radius": float(r)}
                for variant in variants:
                    point[f"cert/{split}/{variant}"] = curve["certified_accuracy"][variant][i]
                self.run.log(point)
            if variants:
                self.run.log({f"plots/{split}": wandb.plot.line_series(
                    xs=curve["radii"], ys=[curve["certified_accuracy"][v] for v in variants],
                    keys=[variant_label(v) for v in variants],
                    title=f"certified accuracy ({split})", xname="radius (L2)")})
            pc = curve.get("poison_count")
            if pc:
                for i, k in enumerate(pc["counts"]):
                    point = {"poison/k": int(k)}
                    for variant, values in pc["certified_accuracy"].items():
                        point[f"poison/{split}/{variant}"] = values[i]
                    self.run.log(point)
        rows = poison_rows(summary)
        if rows:
            self.run.log({"poison_count": wandb.Table(
                columns=["split", "variant", "poisoned_samples", "certified_accuracy"], data=rows)})

    def close(self, failed: bool = False) -> None:
        self.run.finish(exit_code=1 if failed else 0)


WANDB_MODES = ("online", "offline", "disabled")


@dataclass
class WandbSettings(LoggerSettings):
    project: str = MISSING
    entity: Optional[str] = MISSING
    mode: str = MISSING
    group: Optional[str] = MISSING
    job_type: Optional[str] = MISSING
    tags: List[str] = MISSING

    def check(self, run) -> None:
        self.require_choice("mode", WANDB_MODES)

    def open(self, run, output_dir, context: dict) -> RunLogger:
        return WandbLogger(run, output_dir, context)
