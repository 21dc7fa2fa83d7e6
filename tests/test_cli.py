"""The entry point: bad input ends with one line on stderr and a non-zero exit, before any work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from certssb.run import main

REPO = Path(__file__).resolve().parent.parent


def _run_main(capsys, args):
    with pytest.raises(SystemExit) as info:
        main(args)
    err = capsys.readouterr().err.strip()
    return info.value.code, err


@pytest.mark.parametrize(
    "override, key",
    [
        ("sigma_optimiser.sigma_0=-1", "sigma_optimiser.sigma_0"),
        ("sigma_optimiser.sigma_0=0", "sigma_optimiser.sigma_0"),
        ("attack.poison_rate=1.0", "attack.poison_rate"),
        ("attack.poison_rate=-0.1", "attack.poison_rate"),
        ("certifier.alpha=0", "certifier.alpha"),
        ("certifier.alpha=1.5", "certifier.alpha"),
        ("ensemble.n_members=0", "ensemble.n_members"),
        ("attack.target=10", "attack.target"),
        ("certifier.radii=[0.5,0.25]", "certifier.radii"),
        ("certifier.radii=[-0.25,0.5]", "certifier.radii"),
        ("ensemble.n_members=abc", "ensemble.n_members"),
        ("ensemble.device=tpu", "ensemble.device"),
        ("dataset.classes=[1,11]", "dataset.classes"),
        ("ensemble.member_range=[3,2]", "ensemble.member_range"),
        ("certifier.poison_eta=-1", "certifier.poison_eta"),
        ("certifier.poison_eps=-0.5", "certifier.poison_eps"),
        ("certifier.poison_eta=abc", "certifier.poison_eta"),
        ("certifier.grid_select=best", "certifier.grid_select"),
    ],
)
def test_bad_value_is_one_line_naming_the_key(capsys, override, key):
    code, err = _run_main(capsys, [override])
    assert code != 0
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and key in err


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["seed=abc"], "seed"),
        (["seed=[1,2]"], "seed"),
        (["logger=wandb", "logger.mode=bogus"], "logger.mode"),
        (["ensemble.device=tpu"], "ensemble.device"),
        (["ensemble.precision=fp16"], "ensemble.precision"),
        (["ensemble.vectorise=sometimes"], "ensemble.vectorise"),
        (["certifier.mode=both"], "certifier.mode"),
        (["certifier.pb_mode=x"], "certifier.pb_mode"),
        (["certifier.memory.order=random"], "certifier.memory.order"),
        (["attack.corner=middle"], "attack.corner"),
        (["ensemble.lr=[1,2]"], "ensemble.lr"),            # a list where a number is expected
        (["certifier.radii=0.5"], "certifier.radii"),      # a number where a list is expected
        (["dataset.classes=5"], "dataset.classes"),
        (["model.hidden=abc"], "model.hidden"),
        (["undefended.enabled=maybe"], "undefended.enabled"),
        (["cpu_threads=0"], "cpu_threads"),
        (["certifier.memory.order_seed=x"], "certifier.memory.order_seed"),
    ],
)
def test_every_kind_of_bad_value_is_one_line_with_exit_2(capsys, overrides, key):
    code, err = _run_main(capsys, overrides)
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {key} "), err
    assert "$VALUE" not in err and "Error executing job" not in err


def test_target_must_exist_after_class_selection(capsys):
    code, err = _run_main(capsys, ["dataset.classes=[1,0]", "attack.target=2"])
    assert code != 0 and len(err.splitlines()) == 1 and "attack.target" in err and "[0, 1]" in err


def test_unknown_option_lists_the_available_ones(capsys):
    code, err = _run_main(capsys, ["attack=nosuchattack"])
    assert code != 0 and len(err.splitlines()) == 1
    assert "nosuchattack" in err and "badnets" in err


def test_unknown_key_is_rejected(capsys):
    code, err = _run_main(capsys, ["ensemble.n_memberz=3"])
    assert code != 0 and len(err.splitlines()) == 1 and "n_memberz" in err


def _cli(args, env_extra=None, timeout=120):
    env = {**os.environ, "WANDB_MODE": "disabled", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "certssb.run", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cifar10_without_data_or_network_fails_in_one_line(tmp_path):
    proc = _cli(["dataset=cifar10", "logger=none", f"hydra.run.dir={tmp_path}/run"],
                env_extra={"CERTSSB_DATA_DIR": str(tmp_path / "nodata")})
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "cifar-10-batches-py" in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr


def test_cfg_job_prints_the_composed_config():
    proc = _cli(["--cfg", "job", "attack=onepixel", "dataset=digits"])
    assert proc.returncode == 0, proc.stderr
    for key in ("dataset:", "attack:", "model:", "sigma_optimiser:", "ensemble:", "certifier:", "logger:",
                "name: onepixel", "name: mlp"):
        assert key in proc.stdout


def test_bad_value_from_the_command_line(tmp_path):
    proc = _cli(["attack.poison_rate=2", f"hydra.run.dir={tmp_path}/run"])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "attack.poison_rate" in proc.stderr
    assert not (tmp_path / "run").exists()  # stopped before any work


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["sigma_optimiser=grid", "sigma_optimiser.test_sigmas=[0.1,0.5]"], "sigma_optimiser.test_sigmas"),
        (["sigma_optimiser=grid", "sigma_optimiser.test_sigmas=[]"], "sigma_optimiser.test_sigmas"),
        (["sigma_optimiser=grid", "sigma_optimiser.selection=best"], "sigma_optimiser.selection"),
        (["sigma_optimiser=grid", "sigma_optimiser.selection=separate"], "sigma_optimiser.selection_members"),
        (["sigma_optimiser=grid", "sigma_optimiser.selection=separate", "sigma_optimiser.selection_members=500",
          "ensemble.n_members=10"], "sigma_optimiser.selection_members"),
        (["sigma_optimiser=grid_ensembles", "sigma_optimiser.sigma_trains=[0.5,0.5]"], "sigma_optimiser.sigma_trains"),
        (["sigma_optimiser=grid_ensembles", "sigma_optimiser.sigma_trains=[0.25,0.5]",
          "sigma_optimiser.test_sigmas=[0.3]"], "sigma_optimiser.test_sigmas"),
        (["sigma_optimiser=grid_ensembles", "sigma_optimiser.selection=separate"], "sigma_optimiser.selection"),
        (["sigma_optimiser.objective=joint"], "sigma_optimiser.sigma_train_floor"),
        (["sigma_optimiser.objective=sound"], "sigma_optimiser.objective"),
        (["sigma_optimiser=sga_joint", "sigma_optimiser.sigma_train_floor=-1"], "sigma_optimiser.sigma_train_floor"),
    ],
)
def test_bad_design_value_is_one_line_naming_the_key(capsys, overrides, key):
    code, err = _run_main(capsys, overrides)
    assert code != 0
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and key in err


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["ensemble.n_member=20"],
         "error: ensemble.n_member is not a setting of ensemble=gaussian; did you mean ensemble.n_members?"),
        (["attack=badnet"], "error: attack=badnet is not an option of attack; did you mean attack=badnets? (options: "),
        (["atack=badnets"], "error: atack is not a config group or top-level setting; did you mean attack=badnets?"),
        (["sed=3"], "error: sed is not a config group or top-level setting; did you mean seed=3?"),
        (["certifier.memory.ordr=fixed"],
         "error: certifier.memory.ordr is not a setting of certifier=storage_update (under certifier.memory); "
         "did you mean certifier.memory.order?"),
        (["ensembel.epochs=2"], "error: ensembel.epochs: ensembel is not a config group or setting; "
                                "did you mean ensemble.epochs?"),
        (["model=for_digit"], "error: model=for_digit is not an option of model; did you mean model=for_digits?"),
        (["sigma_optimiser=sga_jont"], "error: sigma_optimiser=sga_jont is not an option of sigma_optimiser; "
                                       "did you mean sigma_optimiser=sga_joint?"),
        (["experiment=digits_badnet"], "error: experiment=digits_badnet is not an option of experiment; "
                                       "did you mean experiment=digits_badnets?"),
        (["hydra.run.dri=/tmp/x"], "error: hydra.run.dri is not a setting of hydra.run; did you mean hydra.run.dir?"),
        # keys Hydra lets through (+key) reach certssb's own parse, which suggests too
        (["+ensemble.n_member=20"], "error: ensemble.n_member is not a setting of this option; "
                                    "did you mean ensemble.n_members? (its settings: name, epochs,"),
        (["+atack=badnets"], "error: atack is not a config group or top-level setting; did you mean attack?"),
    ],
)
def test_a_misspelt_name_gets_the_closest_valid_one(capsys, overrides, expected):
    code, err = _run_main(capsys, overrides)
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith(expected), err


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["-m", "ensemble.n_member=1,2"],
         "error: ensemble.n_member is not a setting of ensemble=gaussian; did you mean ensemble.n_members?"),
        (["-m", "attack=onepixel,badnet"], "error: attack=badnet is not an option of attack; did you mean attack=badnets?"),
        (["-m", "atack=onepixel,badnets"], "error: atack is not a config group or top-level setting; "
                                            "did you mean attack=onepixel,badnets?"),
        (["-m", "seed=0,1", "sigma_optimiser=fixed,sga_jont"],
         "error: sigma_optimiser=sga_jont is not an option of sigma_optimiser; did you mean sigma_optimiser=sga_joint?"),
    ],
)
def test_a_misspelt_name_in_a_sweep_stops_it_before_it_starts(capsys, tmp_path, overrides, expected):
    code, err = _run_main(capsys, [*overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(expected), err
    assert not (tmp_path / "sweep").exists()


def test_a_sweep_is_not_stopped_for_values_its_jobs_check(tmp_path):
    """Values are each job's business (a bad one fails that job alone); globs and intervals, which
    have no first value, are left to Hydra."""
    from certssb.preflight import preflight
    from certssb.run import CONF_DIR

    out = [f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert preflight(["-m", "attack.poison_rate=0.1,2.0", *out], CONF_DIR) is None
    assert preflight(["-m", "attack=glob(one*)", "attack.delta=0.5", *out], CONF_DIR) is None
    assert preflight(["-m", "hparams_search=sigma_optuna", *out], CONF_DIR) is None


def test_no_suggestion_when_nothing_is_close(capsys):
    code, err = _run_main(capsys, ["certifier.qqqq=1"])
    assert code == 2 and "did you mean" not in err
    assert err.startswith("error: certifier.qqqq is not a setting of certifier=storage_update; its settings: ")
    assert "alpha" in err and len(err.splitlines()) == 1
    code, err = _run_main(capsys, ["ensemble=qqqq"])
    assert code == 2 and err == "error: ensemble=qqqq is not an option of ensemble (options: bagging, finite_aggregation, gaussian, partition)"


def test_parse_option_suggests_the_closest_setting():
    from certssb.config import ConfigError, load_option

    with pytest.raises(ConfigError, match=r"^attack\.dleta is not a setting of this option; did you mean "
                                          r"attack\.delta\? \(its settings: name, poison_rate, target, delta"):
        load_option("attack", "onepixel", dleta=0.5)


def _cli_in(cwd, args, timeout=120):
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, "-m", "certssb.run", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_sweep_shorthand_runs_a_sweep_file_from_any_directory(tmp_path):
    """sweep=NAME is the sweep file as the primary config; --cfg job shows it; a typo gets the
    closest names; --config-dir multirun_sweeps also works where no such folder exists."""
    cfg = _cli_in(tmp_path, ["sweep=digits_offline", "--cfg", "job"])
    assert cfg.returncode == 0, cfg.stderr
    assert "name: onepixel" in cfg.stdout and "classes:\n  - 0\n  - 1" in cfg.stdout and "n_members: 100" in cfg.stdout
    same = _cli_in(tmp_path, ["--config-dir", "multirun_sweeps", "--config-name", "digits_offline", "--cfg", "job"])
    assert same.returncode == 0 and same.stdout == cfg.stdout, same.stderr
    hydra = _cli_in(tmp_path, ["sweep=digits_offline", "--cfg", "hydra"])
    assert "sigma_optimiser.sigma_0: 0.12,0.25,0.5,1.0" in hydra.stdout and "mode: MULTIRUN" in hydra.stdout
    bad = _cli_in(tmp_path, ["sweep=digits_ofline"])
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: sweep=digits_ofline is not a sweep file; did you mean sweep=digits_offline?")
    assert len(bad.stderr.strip().splitlines()) == 1
    helped = _cli_in(tmp_path, ["sweep=digits_offline", "--help"])
    assert helped.returncode == 0 and "== Config groups" in helped.stdout
    assert not list(tmp_path.iterdir())  # nothing written by --cfg/--help/errors


@pytest.mark.slow
def test_sweep_shorthand_runs_its_jobs(tmp_path):
    """A real (tiny) sweep through sweep=NAME: the file's params make the jobs."""
    proc = _cli_in(tmp_path, ["sweep=compare_digits", "ensemble.n_members=2", "ensemble.epochs=1",
                              "undefended.enabled=false", "dataset.test_size=20", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                   timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = sorted(p.parent.name for p in (tmp_path / "sweep").glob("*/summary.json"))
    assert len(jobs) == 2 and any("sigma_optimiser=fixed" in j for j in jobs) and any("sigma_optimiser=sga" in j for j in jobs)


def test_expand_sweep_rules():
    from certssb.errors import ConfigError
    from certssb.resources import sweeps_dir
    from certssb.run import expand_sweep

    assert expand_sweep(["seed=1"]) == ["seed=1"]
    assert expand_sweep(["sweep=noise_grid", "-m"]) == ["--config-dir", str(sweeps_dir()), "--config-name",
                                                         "noise_grid", "-m"]
    with pytest.raises(ConfigError, match="leave out --config-name"):
        expand_sweep(["sweep=noise_grid", "--config-name", "x"])
    with pytest.raises(ConfigError, match="one sweep file at a time"):
        expand_sweep(["sweep=noise_grid", "sweep=paper_table"])


def test_help_piped_into_head_ends_without_a_traceback(tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.run(f"{sys.executable} -m certssb.run --help | head -1", shell=True, cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith("certssb: ") and "Traceback" not in proc.stderr, proc.stderr


def test_cfg_job_with_a_misspelt_key_is_one_line(capsys):
    from certssb.run import main

    with pytest.raises(SystemExit) as stop:
        main(["--cfg", "job", "ensemble.n_member=3"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and err == ("error: ensemble.n_member is not a setting of ensemble=gaussian; "
                                            "did you mean ensemble.n_members?")
