"""certssb.objective: the float a sweeper optimises, and the Optuna search config."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from certssb.errors import ConfigError
from certssb.objective import DEFAULT_METRIC, optimized_value

REPO = Path(__file__).resolve().parent.parent
SUMMARY = {
    "status": "complete",
    "metrics": {"clean_accuracy": 0.9, "asr": None,
                "clean": {"accuracy": 0.88, "acr": {"joint": 0.3125, "paper": 0.41}}},
    "curves": {"clean": {"radii": [0.0, 0.5], "certified_accuracy": {"joint": [0.88, 0.25]}}},
}


def test_default_is_the_sound_clean_acr():
    assert DEFAULT_METRIC == "metrics.clean.acr.joint"
    value = optimized_value(SUMMARY)
    assert type(value) is float and value == SUMMARY["metrics"]["clean"]["acr"]["joint"]


def test_paths_and_wandb_names():
    assert optimized_value(SUMMARY, "metrics/clean/acr/paper") == 0.41
    assert optimized_value(SUMMARY, "metrics.clean_accuracy") == 0.9
    assert optimized_value(SUMMARY, "ca/clean/joint/r0_5") == 0.25  # a W&B summary name
    assert optimized_value(SUMMARY, "metrics/clean/accuracy") == 0.88


def test_failed_runs_and_null_metrics_give_nan():
    assert math.isnan(optimized_value(SUMMARY, "metrics.asr"))
    assert math.isnan(optimized_value({"status": "failed", "error": "x"}))


@pytest.mark.parametrize("path, message", [
    ("metrics.clean.acr.budget", r"^optimized_metric='metrics.clean.acr.budget' is not in the run's summary"),
    ("metrics.clean.acr", r"names a dict, not a number"),
    ("", r"^optimized_metric must be a path"),
    (3, r"^optimized_metric must be a path"),
])
def test_bad_paths_are_one_line_config_errors(path, message):
    with pytest.raises(ConfigError, match=message) as info:
        optimized_value(SUMMARY, path)
    assert "\n" not in str(info.value)


def test_search_config_declares_the_optuna_sweeper():
    import yaml

    conf = yaml.safe_load((REPO / "conf" / "hparams_search" / "sigma_optuna.yaml").read_text())
    sweeper = conf["hydra"]["sweeper"]
    assert sweeper["_target_"] == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweeper["direction"] == "maximize" and "sigma_optimiser.sigma_0" in sweeper["params"]
    assert conf["optimized_metric"] == DEFAULT_METRIC


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None,
                    reason="hydra-optuna-sweeper is not installed (pip install certssb[optuna])")
@pytest.mark.xfail(strict=False, reason="needs the objective wiring")
def test_three_trial_optuna_search_on_digits(tmp_path):
    import yaml

    sweep = tmp_path / "optuna"
    env = {**os.environ, "WANDB_MODE": "disabled"}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "certssb.run", "-m", "+hparams_search=sigma_optuna", "hydra.sweeper.n_trials=3",
         "hydra.sweeper.n_jobs=1", f"hydra.sweep.dir={sweep}", "logger=none", "dataset.classes=[0,1]",
         "ensemble.n_members=16", "ensemble.epochs=2", "undefended.enabled=false", "sigma_optimiser.iterations=3",
         "sigma_optimiser.n_draws=4"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if (p / "summary.json").is_file())
    assert len(jobs) == 3
    values = [optimized_value(json.loads((j / "summary.json").read_text())) for j in jobs]
    assert max(values) > 0  # 16 unanimous members certify (4 cannot at alpha=0.001): the search sees a signal
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(values), rel=1e-9)  # the sweeper read the returned floats
    assert set(best["best_params"]) >= {"sigma_optimiser.sigma_0", "sigma_optimiser.sigma_min"}
