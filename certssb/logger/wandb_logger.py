"""Weights & Biases logger: config, summary metrics, curves, the run's plots, sigmas and files.

Curves come sound variant first (``joint``); ``paper`` is titled as a test-time (evasion)
certificate. The certified accuracy against k poisoned samples is logged as ``poison/*`` over
``poison/k`` and as the table ``poison_count``.

Mode comes from ``logger.mode`` (``${oc.env:WANDB_MODE,offline}``): offline runs are written
under ``$WANDB_DIR`` when that is set, else under ``<output dir>/wandb/``, and can be uploaded
later with ``wandb sync``. Runs of one sweep share a ``group`` (``logger.group``, else one built
from the swept keys and the sweep dir, see :mod:`certssb.logger.wandb_naming`); a run is named
by its swept values; ``job_type`` is the method (``rab`` / ``cert-ssb``). The run is always
finished, also when the job fails.

Logged at the end of a complete run: summary scalars (names in :mod:`certssb.logger.flatten`),
the long-format ``curves`` table and per-split line plots, ``images/<png stem>`` (the PNGs the
run wrote), ``sigma/<set>`` histograms (``sigmas.npz``) and an artifact ``outputs-<run id>`` of
type ``run-outputs`` holding ``summary.json``, ``certificates.csv`` and ``config.yaml`` (the
composed config).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import yaml
from omegaconf import MISSING

from certssb.config import to_plain
from certssb.logger.base import LoggerSettings, RunLogger
from certssb.logger.flatten import curve_rows, poison_rows, summary_scalars
from certssb.logger.wandb_naming import run_name, sweep_group, swept_keys
from certssb.plots import variant_label

log = logging.getLogger("certssb")

#: PNGs of the run folder logged as ``images/<stem>``
IMAGE_FILES = ("certified_accuracy.png", "certified_poison_count.png", "certified_any_count.png", "sigma_histogram.png")
#: files of the run folder put into the outputs artifact (when present)
ARTIFACT_FILES = ("summary.json", "certificates.csv", "votes.npz")


def _read_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _hydra_context() -> dict:
    try:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return {}
    mode = str(hc.mode)
    multirun = mode.endswith("MULTIRUN")
    sweep_dir = str(hc.sweep.dir)
    sweep_overrides = list(hc.overrides.task)
    if multirun:  # the sweep's own overrides (``a=1,2``) are in multirun.yaml, the job has one value
        saved = _read_yaml(Path(sweep_dir) / "multirun.yaml") or {}
        sweep_overrides = list(((saved.get("hydra") or {}).get("overrides") or {}).get("task") or sweep_overrides)
    params = hc.sweeper.get("params") if "sweeper" in hc else None
    return {"multirun": multirun, "sweep_dir": sweep_dir, "overrides": list(hc.overrides.task),
            "sweep_overrides": sweep_overrides, "sweeper_params": dict(params) if params else {},
            "job_num": hc.job.get("num")}


def names_from_hydra(ctx: dict) -> tuple[str | None, str | None]:
    """``(default group, run name)`` of a job from its Hydra context (both None outside Hydra)."""
    if not ctx:
        return None, None
    if ctx.get("multirun"):
        keys = swept_keys(ctx["sweep_overrides"], ctx["sweeper_params"])
        group = sweep_group(ctx["sweep_overrides"], ctx["sweeper_params"], ctx["sweep_dir"])
        name = run_name(ctx["overrides"], keys) if keys else None
        if name is None and ctx.get("job_num") is not None:
            name = f"job{ctx['job_num']}"
        return group, name
    return None, run_name(ctx.get("overrides", []))


class WandbLogger(RunLogger):
    """One W&B run per job, opened on construction and finished on exit."""

    def __init__(self, cfg, output_dir: Path, context: dict) -> None:
        import wandb

        self._wandb = wandb
        self.output_dir = Path(output_dir)
        hydra_ctx = _hydra_context()
        method = context.get("method", "run")
        default_group, name = names_from_hydra(hydra_ctx)
        group = cfg.logger.group if cfg.logger.group is not None else default_group
        config = to_plain(cfg)
        self._config_yaml = yaml.safe_dump(config, sort_keys=False)
        config["overrides"] = hydra_ctx.get("overrides", [])
        config["method"] = method
        run_dir = None if os.environ.get("WANDB_DIR") else str(self.output_dir)  # None: wandb uses WANDB_DIR
        kwargs = dict(project=cfg.logger.project, entity=cfg.logger.entity, group=group,
                      job_type=cfg.logger.job_type or method, tags=list(cfg.logger.tags) or None,
                      name=name, config=config, dir=run_dir, mode=str(cfg.logger.mode),
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
        self.run.define_metric("any/k")
        self.run.define_metric("any/*", step_metric="any/k")

    def log_summary(self, summary: dict) -> None:
        """Scalars, the curves (radius, poisoned samples with labels unchanged, any k changed
        samples) as W&B line charts and tables, and the run's files."""
        wandb = self._wandb
        for key, value in summary_scalars(summary).items():
            self.run.summary[key] = value
        self.run.log({"curves": wandb.Table(columns=["split", "variant", "radius", "certified_accuracy"],
                                            data=curve_rows(summary))})
        for split, curve in summary.get("curves", {}).items():
            if curve.get("certified_accuracy"):
                self._log_radius_curve(split, curve)
            self._log_counts("poison", split, (curve.get("poison_count") or {}).get("counts"),
                             (curve.get("poison_count") or {}).get("certified_accuracy") or {})
            any_count = curve.get("any_count") or {}
            self._log_counts("any", split, any_count.get("counts"),
                             {"certified": any_count["certified_accuracy"]} if any_count else {})
        rows = poison_rows(summary)
        if rows:
            self.run.log({"poison_count": wandb.Table(
                columns=["split", "variant", "poisoned_samples", "certified_accuracy"], data=rows)})
        self.log_files()

    def _log_radius_curve(self, split: str, curve: dict) -> None:
        variants = list(curve["certified_accuracy"])
        for i, r in enumerate(curve["radii"]):
            point = {"cert/radius": float(r)}
            for variant in variants:
                point[f"cert/{split}/{variant}"] = curve["certified_accuracy"][variant][i]
            self.run.log(point)
        self.run.log({f"plots/{split}": self._wandb.plot.line_series(
            xs=curve["radii"], ys=[curve["certified_accuracy"][v] for v in variants],
            keys=[variant_label(v) for v in variants], title=f"certified accuracy ({split})", xname="radius (L2)")})

    def _log_counts(self, prefix: str, split: str, counts, series: dict) -> None:
        """``<prefix>/<split>/<name>`` against ``<prefix>/k`` (``poison``: labels unchanged; ``any``:
        any k training samples changed, labels included)."""
        for i, k in enumerate(counts or []):
            point = {f"{prefix}/k": int(k)}
            for name, values in series.items():
                point[f"{prefix}/{split}/{name}"] = values[i]
            self.run.log(point)

    def log_files(self) -> None:
        """The run folder's PNGs as images, its sigmas as histograms, its files as an artifact."""
        wandb, out = self._wandb, self.output_dir
        media = {f"images/{Path(name).stem}": wandb.Image(str(out / name)) for name in IMAGE_FILES
                 if (out / name).is_file()}
        sigmas = out / "sigmas.npz"
        if sigmas.is_file():
            import numpy as np

            with np.load(sigmas) as data:
                for key in data.files:
                    if data[key].size:
                        media[f"sigma/{key}"] = wandb.Histogram(data[key].astype("float64"))
        if media:
            self.run.log(media)
        artifact = wandb.Artifact(name=f"outputs-{self.run.id}", type="run-outputs",
                                  description="summary.json, certificates.csv and the composed config of one run")
        for name in ARTIFACT_FILES:
            if (out / name).is_file():
                artifact.add_file(str(out / name), name=name)
        with artifact.new_file("config.yaml") as f:
            f.write(self._config_yaml)
        self.run.log_artifact(artifact)

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
