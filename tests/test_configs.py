"""Every experiment and sweep file composes into a valid config; schemas reject bad types."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from certssb.config import parse_run

from conftest import compose_cfg

REPO = Path(__file__).resolve().parent.parent
EXPERIMENTS = sorted(p.stem for p in (REPO / "experiments").glob("*.yaml"))
SWEEPS = sorted(p.stem for p in (REPO / "multirun_sweeps").glob("*.yaml"))


def test_there_are_experiments_and_sweeps():
    assert {"mnist_onepixel_paper", "cifar10_onepixel_paper", "digits_onepixel_binary"} <= set(EXPERIMENTS)
    assert {"digits_offline", "noise_grid", "attack_grid", "paper_table", "paper_members_split"} <= set(SWEEPS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_validates(name):
    cfg = compose_cfg([f"experiment={name}"])
    parse_run(cfg)
    assert cfg.dataset.name in name or name.startswith(cfg.dataset.name.split("_")[0])


def test_paper_settings_are_pinned():
    cfg = compose_cfg(["experiment=mnist_onepixel_paper"])
    assert (cfg.dataset.name, list(cfg.dataset.classes), cfg.attack.name) == ("mnist", [0, 1], "onepixel")
    assert (cfg.attack.poison_rate, cfg.attack.delta) == (0.02, 1.0)
    sga = cfg.sigma_optimiser  # Cert-SSB with the paper-scale budget (sga_long); sigma_0 is swept by noise_grid
    assert (sga.name, sga.iterations, sga.n_draws, sga.sigma_min, sga.sigma_max) == ("sga", 100, 32, 0.05, 1.0)
    rab = compose_cfg(["experiment=mnist_onepixel_paper", "sigma_optimiser=fixed", "sigma_optimiser.sigma_0=0.12"])
    assert rab.sigma_optimiser.sigma_0 == 0.12 and "iterations" not in rab.sigma_optimiser  # RAB at the paper's sigma
    parse_run(rab)
    assert (cfg.ensemble.n_members, cfg.ensemble.epochs, cfg.ensemble.batch_size) == (1000, 20, 128)
    assert cfg.model.name == "mnist_cnn" and cfg.certifier.alpha == 0.001
    assert list(cfg.certifier.radii) == [0.25 * i for i in range(11)]


def _sweep_params(name):
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(REPO / "multirun_sweeps"), version_base="1.3"):
            cfg = compose(config_name=name, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    return cfg


def _choices(values) -> list[str]:
    text = str(values)
    if not text.startswith("["):
        return [c.strip() for c in text.split(",")]
    # a list-valued sweep such as member ranges: "[0,250],[250,500]"
    parts = [c if c.startswith("[") else f"[{c}" for c in text.split("],")]
    return [c if c.endswith("]") else c + "]" for c in parts]


@pytest.mark.parametrize("name", SWEEPS)
def test_sweep_file_composes_with_every_sweep_point_valid(name):
    cfg = _sweep_params(name)
    assert str(cfg.hydra.mode) in ("MULTIRUN", "RunMode.MULTIRUN")
    params = cfg.hydra.sweeper.params
    assert params, name
    # Compose the first and the last point of the sweep (every swept key at once) and parse them.
    choices = {key: _choices(values) for key, values in params.items()}
    for pick in (0, -1):
        overrides = [f"{key}={values[pick]}" for key, values in choices.items()]
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(config_dir=str(REPO / "multirun_sweeps"), version_base="1.3"):
                point = compose(config_name=name, overrides=overrides)
        finally:
            GlobalHydra.instance().clear()
        parse_run(point)


def test_launchers_are_available():
    cfg = compose_cfg(["hydra/launcher=certssb_gpu"])
    assert cfg is not None
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        hc = compose("config", overrides=["hydra/launcher=certssb_slurm"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    assert hc.hydra.launcher.gpus_per_node == 1
    assert "submitit" in hc.hydra.launcher._target_


DEFAULT_MODEL = {"digits": "mlp", "fashion_mnist": "mnist_cnn", "mnist": "mnist_cnn", "cifar10": "preact_resnet32",
                 "cifar100": "preact_resnet32", "gtsrb": "preact_resnet32", "svhn": "preact_resnet32",
                 "imagenette": "resnet18", "image_folder": "resnet18"}


def test_every_dataset_option_has_a_default_model():
    options = {p.stem for p in (REPO / "conf" / "dataset").glob("*.yaml")}
    assert options == set(DEFAULT_MODEL)
    assert all((REPO / "conf" / "model" / f"for_{o}.yaml").is_file() for o in options)


@pytest.mark.parametrize("dataset", sorted(DEFAULT_MODEL))
def test_each_dataset_picks_its_default_model(dataset):
    cfg = compose_cfg([f"dataset={dataset}"])
    assert cfg.model.name == DEFAULT_MODEL[dataset]
    assert compose_cfg([f"dataset={dataset}", "model=digits_cnn"]).model.name == "digits_cnn"


RESULTS_SWEEPS = [s for s in SWEEPS if s.startswith("results_")]


@pytest.mark.parametrize("name", RESULTS_SWEEPS)
def test_results_sweep_methods_are_distinct_and_valid(name):
    """Every method of a results sweep composes, parses, and differs from the others (no two
    jobs of a seed run the same configuration, e.g. an experiment overwriting a method's sigma)."""
    from omegaconf import OmegaConf

    methods = _choices(_sweep_params(name).hydra.sweeper.params["method"])
    assert len(methods) == 11, methods
    seen: dict[str, str] = {}
    for method in methods:
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(config_dir=str(REPO / "multirun_sweeps"), version_base="1.3"):
                point = compose(config_name=name, overrides=["seed=0", f"method={method}"])
        finally:
            GlobalHydra.instance().clear()
        run = parse_run(point)
        key = str(OmegaConf.to_container(point.sigma_optimiser, resolve=True))
        assert key not in seen, f"{method} composes like {seen.get(key)}"
        seen[key] = method
        sig = run.sigma_optimiser
        digits = "".join(c for c in method.removesuffix("_light").split("_")[-1] if c.isdigit())  # rab_s012 -> 012
        value = int(digits) / 100 if digits else 0.25
        if sig.name == "fixed":
            assert sig.sigma_0 == value
        elif sig.name == "grid":
            assert sig.sigma_train == value and max(sig.test_sigmas) == value
        elif sig.name == "grid_ensembles":  # RAB's four sigmas, each ensemble at its own
            assert list(sig.sigma_trains) == [0.12, 0.25, 0.5, 1.0] and sig.test_sigmas is None
        elif sig.objective == "joint":
            assert sig.sigma_train_floor == value and sig.sigma_0 == value
        else:
            assert (sig.name, sig.sigma_0, sig.sigma_train_floor) == ("sga", 0.25, None)
