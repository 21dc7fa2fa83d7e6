"""The Gaussian check end to end (:func:`run_falsification`) and its report (``falsify.json``)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .config import IN_RADIUS_SCALE, FalsifyConfig
from .gaussian_runner import GaussianRunner
from .gaussian_scales import ScaleResult, run_scale
from .session import session, write_report

__all__ = ["run_falsification", "summary_line"]


def _timed(runner: GaussianRunner, name: str, fn):
    t0 = time.perf_counter()
    value = fn()
    runner.timings[name] = time.perf_counter() - t0
    return value


def _sigma_section(r: GaussianRunner, cfg: FalsifyConfig) -> dict:
    trained = torch.cat(r.ensemble_sigmas)
    cert_trains = ([float(t.min()) for t in r.ensemble_sigmas] if cfg.sigma == "grid_ensembles"
                   else [r.sigma_train_min])
    return {"rule": cfg.sigma, "objective": cfg.objective, "floor": cfg.floor,
            "train_min": r.sigma_train_min, "trained_min": float(trained.min()),
            "train_median": float(trained.median()), "train_max": float(trained.max()),
            "test_min": float(r.sig_test.min()), "test_median": float(r.sig_test.median()),
            "test_max": float(r.sig_test.max()),
            "sigma_trains": cert_trains,  # the certificate's training sigma, per ensemble
            "inputs_by_train_sigma": {f"{t:g}": int((r.ens_of == e).sum()) for e, t in enumerate(cert_trains)}}


def _clean_section(r: GaussianRunner) -> dict:
    y_test = r.splits.y_test.numpy()
    certified = r.r_joint > 0
    any_cert = bool(certified.any())
    return {"accuracy": float(np.mean(r.prediction == y_test)),
            "certified_fraction": float(np.mean(certified)),
            "r_joint_median": float(np.median(r.r_joint[certified])) if any_cert else 0.0,
            "r_joint_min": float(r.r_joint[certified].min()) if any_cert else 0.0,
            "r_joint_max": float(r.r_joint.max()),
            "r_paper_median": float(np.median(r.radii["paper"][certified])) if any_cert else 0.0}


def _report(r: GaussianRunner, cfg: FalsifyConfig, results: tuple, control, seconds: float) -> dict:
    within, power = results
    report = {
        "family": "gaussian",
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()},
        "dataset": {"n_train": int(len(r.splits.x_train)), "n_test": int(len(r.splits.y_test)),
                    "classes": list(cfg.classes)},
        "sigma": _sigma_section(r, cfg),
        "clean": _clean_section(r),
        "control_votes_identical": control,
        "within": within.as_dict(),
        "power": [p.as_dict() for p in power],
        "timings": {**{k: round(v, 2) for k, v in r.timings.items()}, "total": round(seconds, 2)},
    }
    report["summary"] = summary_line(report)
    return report


def run_falsification(cfg: FalsifyConfig, out: Path | None = None, workdir: Path | None = None) -> dict:
    """Run the whole check; returns (and with ``out`` writes ``out/falsify.json``) the report."""
    cfg.validate()
    t_start = time.perf_counter()
    with session(cfg.threads, out, workdir) as work:
        r = GaussianRunner(cfg, work)
        groups = r.attack_groups()
        index = np.concatenate(list(groups.values())) if groups else np.zeros(0, np.int64)
        control = _timed(r, "control", lambda: r.control_identical(index))
        within = _timed(r, "within", lambda: run_scale(r, IN_RADIUS_SCALE, groups))
        power: list[ScaleResult] = [_timed(r, f"power_{s:g}", lambda s=s: run_scale(r, float(s), groups))
                                    for s in cfg.power_scales]
        report = _report(r, cfg, (within, power), control, time.perf_counter() - t_start)
    write_report(report, out)
    return report


def summary_line(report: dict) -> str:
    """``falsification: tried=<n> flipped=<m> (within R/2); power check: tried=<n> flipped=<m> (at <s>x R)``."""
    w = report["within"]
    text = f"falsification: tried={w['tried']} flipped={w['flipped']} (within R/2)"
    if report["power"]:
        p = report["power"][-1]
        text += f"; power check: tried={p['tried']} flipped={p['flipped']} (at {p['scale']:g}x R)"
    return text
