"""The shipped sweeps: no two jobs of a sweep are the same run; job folders ignore logging and
resume overrides (so a rerun with them resumes)."""

from __future__ import annotations

import itertools

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf, open_dict

from certssb.config import parse_run
from certssb.resume import config_fingerprint
from conftest import REPO

SWEEPS = REPO / "multirun_sweeps"
SWEEP_FILES = sorted(p.stem for p in SWEEPS.glob("*.yaml"))
# Overrides that only change logging, resuming or where/how fast a job runs.
NON_RESULT = ["logger=wandb", "force=true", "ensemble.device=cpu",
              "ensemble.vectorise=false", "ensemble.group_size=4", "ensemble.eval_batch_size=64",
              "ensemble.checkpoint_dir=/tmp/elsewhere", "sigma_optimiser.device=cpu"]


@pytest.fixture(scope="module", autouse=True)
def _hydra_once():
    """One Hydra initialisation for the module (compositions are then cheap)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(SWEEPS), version_base="1.3"):
        yield
    GlobalHydra.instance().clear()


_CACHE: dict = {}


def _compose(name: str, overrides: list[str]):
    key = (name, tuple(overrides))
    if key not in _CACHE:
        _CACHE[key] = compose(config_name=name, overrides=list(overrides), return_hydra_config=True)
    return _CACHE[key]


def _jobs(name: str) -> list[list[str]]:
    """The job override lists Hydra's basic sweeper makes of the sweep file's params."""
    params = _compose(name, []).hydra.sweeper.params
    args = [f"{k}={v}" for k, v in OmegaConf.to_container(params).items()]
    parsed = OverridesParser.create().parse_overrides(args)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def _fingerprint(cfg) -> str:
    job = cfg.copy()
    with open_dict(job):
        del job["hydra"]
    return config_fingerprint(parse_run(job))


def _dirname(cfg) -> str:
    return cfg.hydra.job.override_dirname


def test_every_sweep_file_is_checked():
    assert {"attack_grid", "digits_offline", "paper_table"} <= set(SWEEP_FILES)


def _one_seed(jobs: list[list[str]]) -> list[list[str]]:
    """The jobs of the first swept seed, plus one job at the second: the seed enters every
    fingerprint (checked on that pair), so two jobs that differ only in it can never collide, and
    the other keys are checked at one seed (a third of the compositions of a 3-seed sweep)."""
    seeds = [next((o.split("=", 1)[1] for o in job if o.startswith("seed=")), None) for job in jobs]
    values = list(dict.fromkeys(seeds))
    if len(values) < 2:
        return jobs
    first = [job for job, s in zip(jobs, seeds) if s == values[0]]
    twin = [o if not o.startswith("seed=") else f"seed={values[1]}" for o in first[0]]
    return first + [twin]


@pytest.mark.slow  # ~100 compositions: about a minute on 2 cores
@pytest.mark.parametrize("name", SWEEP_FILES)
def test_no_two_jobs_compose_to_the_same_config(name):
    jobs = _one_seed(_jobs(name))
    assert len(jobs) >= 2
    prints = {}
    for job in jobs:
        cfg = _compose(name, job)
        fp = _fingerprint(cfg)
        assert fp not in prints, f"{name}: {job} and {prints[fp]} are the same run"
        prints[fp] = job


def test_one_seed_keeps_the_first_seed_and_one_twin():
    jobs = [["seed=0", "method=a"], ["seed=0", "method=b"], ["seed=1", "method=a"], ["seed=1", "method=b"]]
    assert _one_seed(jobs) == [["seed=0", "method=a"], ["seed=0", "method=b"], ["seed=1", "method=a"]]
    assert _one_seed([["lr=1"], ["lr=2"]]) == [["lr=1"], ["lr=2"]]


def test_a_key_the_attack_does_not_read_is_rejected_not_ignored():
    # each attack's schema holds only its own keys: badnets has no delta, so no sweep can make
    # duplicate BadNets jobs by sweeping it
    with pytest.raises(Exception, match="attack.delta"):  # Hydra refuses to compose it
        _fingerprint(_compose("attack_grid", ["attack=badnets", "attack.delta=0.5"]))
    a = _fingerprint(_compose("attack_grid", ["attack=badnets"]))
    c = _fingerprint(_compose("attack_grid", ["attack=badnets", "attack.patch_size=2"]))
    assert a != c
    d = _fingerprint(_compose("attack_grid", ["attack=onepixel", "attack.delta=0.5"]))
    e = _fingerprint(_compose("attack_grid", ["attack=onepixel", "attack.delta=1.0"]))
    assert d != e


@pytest.mark.parametrize("extra", NON_RESULT)
def test_job_folders_and_fingerprints_ignore_logging_and_resume_overrides(extra):
    job = _jobs("digits_offline")[-1]
    plain, rerun = _compose("digits_offline", job), _compose("digits_offline", [*job, extra])
    assert _dirname(plain) == _dirname(rerun) != ""
    assert _fingerprint(plain) == _fingerprint(rerun)


def test_job_folders_change_with_result_overrides():
    job = _jobs("digits_offline")[-1]
    plain = _compose("digits_offline", job)
    for extra in ("seed=3", "ensemble.n_members=7", "ensemble.epochs=2", "attack.delta=0.5"):
        other = _compose("digits_offline", [*job, extra])
        assert _dirname(plain) != _dirname(other) and _fingerprint(plain) != _fingerprint(other)


def test_job_folder_names_unique_within_each_sweep():
    for name in ("attack_grid", "attack_grid_badnets"):
        names = [_dirname(_compose(name, job)) for job in _jobs(name)]
        assert len(set(names)) == len(names)
    both = [_dirname(_compose(n, j)) for n in ("attack_grid", "attack_grid_badnets") for j in _jobs(n)]
    assert len(set(both)) == len(both)  # they share multirun/attack_grid
    assert not any(a == b for a, b in itertools.combinations(both, 2))
