"""certssb.logger: W&B metric names, group and run names, and an offline run's images,
histograms and artifact (written into tmp dirs; no network)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from certssb.logger.flatten import metric_name, radius_key, summary_scalars
from certssb.logger.wandb_logger import names_from_hydra
from certssb.logger.wandb_naming import run_name, sweep_group, sweep_label, swept_keys
from tests.conftest import compose_cfg

SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_/")
SUMMARY = {
    "method": "cert-ssb", "n_members": 4,
    "metrics": {"clean_accuracy": 0.9, "asr": 0.1, "clean": {"acr": {"joint": 0.31, "paper": 0.4}}},
    "curves": {"clean": {"radii": [0.0, 0.25, 0.5, 1.0], "certified_accuracy": {"joint": [0.9, 0.7, 0.5, 0.2],
                                                                                "joint_memory": [0.9, 0.6, 0.4, 0.1]}}},
    "timings": {"total_s": 3.5},
}


def test_metric_names_are_sortable_and_keep_their_values():
    scalars = summary_scalars(SUMMARY)
    assert all(set(k) <= SAFE for k in scalars)
    assert scalars["ca/clean/joint/r0_5"] == 0.5 and scalars["ca/clean/joint/r0_25"] == 0.7
    assert scalars["ca/clean/joint_memory/r1"] == 0.1 and scalars["ca/clean/joint/r0"] == 0.9
    assert scalars["metrics/clean/acr/joint"] == 0.31 and scalars["timings/total_s"] == 3.5
    assert len([k for k in scalars if k.startswith("ca/")]) == 8  # no two radii collapse into one name
    assert radius_key(1e-5) == "r1e_05" and metric_name("a@b.c-d") == "a_b_c_d"


def test_swept_keys_group_and_run_names():
    sweep = ["sigma_optimiser=fixed,sga", "logger=wandb", "seed=range(0,2)", "ensemble.n_members=4",
             "hydra.sweep.dir=x"]
    assert swept_keys(sweep) == ["sigma_optimiser", "seed"]
    assert swept_keys(["a=1"], {"sigma_optimiser.sigma_0": "interval(0.1, 1.0)"}) == ["sigma_optimiser.sigma_0"]
    assert sweep_label("multirun/2026-11-28/14-51-55") == "2026-11-28/14-51-55"
    assert sweep_label("/tmp/my_sweep") == "my_sweep"
    assert sweep_group(sweep, None, "multirun/2026-11-28/14-51-55") == "sigma_optimiser+seed 2026-11-28/14-51-55"
    assert sweep_group(["a=1"], None, "/tmp/s") == "s"
    job = ["sigma_optimiser=sga", "logger=wandb", "seed=1", "ensemble.n_members=4"]
    assert run_name(job, ["sigma_optimiser", "seed"]) == "sigma_optimiser=sga,seed=1"
    assert run_name(["logger=wandb", "+dataset.classes=[0,1]"]) == "dataset.classes=[0,1]"
    assert run_name(["logger=wandb", "logger.project=p"]) is None
    ctx = {"multirun": True, "sweep_dir": "/tmp/sw", "overrides": job, "sweep_overrides": sweep,
           "sweeper_params": {}, "job_num": 1}
    assert names_from_hydra(ctx) == ("sigma_optimiser+seed sw", "sigma_optimiser=sga,seed=1")
    assert names_from_hydra({}) == (None, None)


def _write_outputs(out: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    for name in ("certified_accuracy.png", "certified_poison_count.png", "certified_any_count.png", "sigma_histogram.png"):
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [1, 0])
        fig.savefig(out / name)
        plt.close(fig)
    np.savez(out / "sigmas.npz", train=np.linspace(0.2, 0.6, 50), test_clean=np.linspace(0.3, 0.5, 20))
    (out / "summary.json").write_text(json.dumps(SUMMARY))
    (out / "certificates.csv").write_text("split,index,radius_joint\nclean,0,0.5\n")


def _record(run_dir: Path, last: bytes, timeout: float = 30.0) -> bytes:
    """The run's .wandb record once it holds ``last`` (written asynchronously by wandb-core)."""
    deadline = time.monotonic() + timeout
    while True:
        record = next(run_dir.glob("run-*.wandb")).read_bytes()
        if last in record or time.monotonic() > deadline:
            return record
        time.sleep(0.2)


@pytest.mark.parametrize("wandb_dir_set", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_offline_run_holds_images_histograms_and_artifact(tmp_path, monkeypatch, wandb_dir_set):
    from certssb.logger.wandb_logger import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    if wandb_dir_set:
        monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_home"))
    else:
        monkeypatch.delenv("WANDB_DIR", raising=False)
    import wandb

    wandb.teardown()  # wandb reads the environment once per process setup
    from certssb.config import parse_run
    from certssb.logger import open_logger

    settings = parse_run(compose_cfg(["logger=wandb"]))
    out = tmp_path / "job"
    _write_outputs(out)
    with open_logger(settings, out, {"method": "cert-ssb"}) as logger:
        assert isinstance(logger, WandbLogger)
        logger.log_summary(SUMMARY)
        run_id = logger.run.id
    wandb.teardown()  # stops W&B's service process, which writes the rest of the .wandb record
    where = (tmp_path / "wandb_home") if wandb_dir_set else out
    runs = list((where / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list(tmp_path.rglob("offline-run-*"))
    if wandb_dir_set:
        assert not (out / "wandb").exists()  # WANDB_DIR is respected, not overridden by the job folder
    images = sorted(p.name for p in runs[0].glob("files/media/images/**/*.png"))
    for stem in ("certified_accuracy", "certified_poison_count", "certified_any_count", "sigma_histogram"):
        assert any(n.startswith(stem) for n in images), (stem, images)  # every PNG of the run
    record = _record(runs[0], f"outputs-{run_id}".encode())
    assert b"sigma/train" in record and b"histogram" in record
    assert b"ca/clean/joint/r0_5" in record
    assert f"outputs-{run_id}".encode() in record  # the artifact was logged with the run
    staged = sorted((tmp_path / "data" / "artifacts" / "staging").glob("*"))  # copies wandb sync uploads
    staged_names = [p.read_text(errors="replace") for p in staged if p.is_file()]
    assert any('"n_members": 4' in t for t in staged_names)  # summary.json staged for wandb sync
    assert any("radius_joint" in t for t in staged_names)  # certificates.csv
    assert any("sigma_optimiser:" in t for t in staged_names)  # the composed config


@pytest.mark.slow
def test_a_count_family_run_logs_its_one_axis_offline(tmp_path, monkeypatch):
    """A real (tiny) DPA run with logger=wandb completes: the any-k curve and the attack-as-run metric
    are logged, the summary stays complete, and votes.npz goes into the artifact."""
    from certssb import pipeline

    for key, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(tmp_path / "wb"),
                       "WANDB_DATA_DIR": str(tmp_path / "data"), "WANDB_CACHE_DIR": str(tmp_path / "cache"),
                       "WANDB_CONFIG_DIR": str(tmp_path / "config")}.items():
        monkeypatch.setenv(key, value)
    import wandb

    wandb.teardown()
    cfg = compose_cfg(["logger=wandb", "logger.mode=offline", "ensemble=partition", "ensemble.n_parts=8",
                       "ensemble.epochs=5", "undefended.enabled=false", "attack.poison_rate=0.005"])
    summary = pipeline.run(cfg, output_dir=tmp_path / "job", progress=False)
    wandb.teardown()
    assert summary["status"] == "complete" and summary["family"] == "count"
    assert json.loads((tmp_path / "job" / "summary.json").read_text())["status"] == "complete"
    (run,) = list((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    record = b"".join(p.read_bytes() for p in run.glob("*.wandb"))
    assert b"metrics/clean/realised_attack_certified" in record and b"ca_any/clean/k0" in record
    assert b"any/clean/certified" in record
    staged = [p.read_bytes() for p in (tmp_path / "data" / "artifacts" / "staging").glob("*") if p.is_file()]
    assert any(b.startswith(b"PK") and b"clean.npy" in b for b in staged)  # votes.npz (a zip of clean.npy, ...)
