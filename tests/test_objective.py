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
SUMMARY = {  # the shape of certssb.summary's output: metrics.<split>.acr is the sound (joint) ACR
    "status": "complete",
    "metrics": {"clean_accuracy": 0.9, "asr": None,
                "clean": {"accuracy": 0.88, "acr": 0.3125, "acr_by_variant": {"joint": 0.3125, "paper": 0.41}}},
    "curves": {"clean": {"radii": [0.0, 0.5], "certified_accuracy": {"joint": [0.88, 0.25]}}},
}


def test_default_is_the_sound_clean_acr():
    assert DEFAULT_METRIC == "metrics.clean.acr"
    value = optimized_value(SUMMARY)
    assert type(value) is float and value == SUMMARY["metrics"]["clean"]["acr_by_variant"]["joint"]


def test_the_default_exists_in_a_real_summary(tmp_path, run_pipeline):
    """The default path names the sound ACR of a summary the pipeline writes (not a stale shape)."""
    summary = run_pipeline(tmp_path, ["dataset.classes=[0,1]", "ensemble.n_members=2", "ensemble.epochs=1",
                                      "undefended.enabled=false", "sigma_optimiser=fixed"])
    value = optimized_value(summary)
    assert value == summary["metrics"]["clean"]["acr_by_variant"]["joint"] >= 0.0
    assert optimized_value(summary, "metrics.clean.acr_by_variant.paper") == summary["metrics"]["clean"]["acr_by_variant"]["paper"]


def test_paths_and_wandb_names():
    assert optimized_value(SUMMARY, "metrics/clean/acr_by_variant/paper") == 0.41
    assert optimized_value(SUMMARY, "metrics.clean_accuracy") == 0.9
    assert optimized_value(SUMMARY, "ca/clean/joint/r0_5") == 0.25  # a W&B summary name
    assert optimized_value(SUMMARY, "metrics/clean/accuracy") == 0.88


def test_failed_runs_and_null_metrics_give_nan():
    assert math.isnan(optimized_value(SUMMARY, "metrics.asr"))
    assert math.isnan(optimized_value({"status": "failed", "error": "x"}))


@pytest.mark.parametrize("path, message", [
    ("metrics.clean.acr.joint", r"^optimized_metric='metrics.clean.acr.joint' is not in the run's summary"),
    ("metrics.clean.acr_by_variant", r"names a dict, not a number"),
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
    assert "optimized_metric" not in conf  # one place: conf/config.yaml
    assert yaml.safe_load((REPO / "conf" / "config.yaml").read_text())["optimized_metric"] == DEFAULT_METRIC


def test_sweep_return_gives_a_float_or_a_failed_trial(tmp_path, monkeypatch):
    import certssb.pipeline
    from certssb.run import sweep_return

    assert sweep_return(SUMMARY, DEFAULT_METRIC) == 0.3125
    failed = {"status": "failed", "error": "x", "output_dir": "d"}
    assert sweep_return(failed, DEFAULT_METRIC) is failed  # the failed-jobs callback still sees the dict
    assert sweep_return(SUMMARY, "metrics.asr") is None  # null: not float-castable, a failed Optuna trial
    monkeypatch.setattr(certssb.pipeline, "output_dir_from_hydra", lambda: tmp_path)
    record = sweep_return(SUMMARY, "metrics.nope")
    assert record["status"] == "failed" and record["error"].startswith("optimized_metric='metrics.nope' is not in")
    assert not (tmp_path / "summary.json").exists()  # the run's complete summary is not overwritten


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None,
                    reason="hydra-optuna-sweeper is not installed (pip install certssb[optuna])")
def test_three_trial_optuna_search_on_digits(tmp_path):
    import yaml

    sweep = tmp_path / "optuna"
    env = {**os.environ, "WANDB_MODE": "disabled"}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "certssb.run", "-m", "hparams_search=sigma_optuna", "hydra.sweeper.n_trials=3",
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


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None,
                    reason="hydra-optuna-sweeper is not installed (pip install certssb[optuna])")
def test_failed_trials_leave_the_search_going_and_the_sweep_exits_1(tmp_path):
    """A trial whose config is invalid returns its failed record: Optuna marks it failed, the others
    run, the best value is the valid trial's, and the failed-jobs callback ends with one line."""
    import yaml

    probe = tmp_path / "conf" / "hparams_search"
    probe.mkdir(parents=True)
    (probe / "target_probe.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /hydra/sweeper: optuna\nhydra:\n  sweeper:\n"
        "    direction: maximize\n    n_trials: 4\n    n_jobs: 1\n    sampler:\n"
        "      _target_: optuna.samplers.TPESampler\n      seed: 0\n    params:\n"
        "      attack.target: choice(0, 5)\n")  # target 5 is not a class of digits 0 vs 1
    sweep = tmp_path / "sweep"
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, "-m", "certssb.run", "-m", f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
         "hparams_search=target_probe", f"hydra.sweep.dir={sweep}", "logger=none", "dataset.classes=[0,1]",
         "ensemble.n_members=2", "ensemble.epochs=1", "undefended.enabled=false", "sigma_optimiser=fixed"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    summaries = [json.loads((j / "summary.json").read_text()) for j in sorted(sweep.iterdir())
                 if (j / "summary.json").is_file()]
    failed = [s for s in summaries if s["status"] == "failed"]
    complete = [s for s in summaries if s["status"] == "complete"]
    assert len(summaries) == 4 and failed and complete, proc.stderr[-3000:]  # seed 0 draws both targets
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {len(failed)} of 4 jobs failed; first: ")
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_params"] == {"attack.target": 0}
    assert best["best_value"] == pytest.approx(max(optimized_value(s) for s in complete), rel=1e-9)
