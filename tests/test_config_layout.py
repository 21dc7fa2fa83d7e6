"""The configuration's shape: one hop from an option's yaml to its code, one place per value,
extension without editing certssb, and entry points that do not pay for torch."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from omegaconf import MISSING, OmegaConf

from certssb.config import GROUPS, Option, load_option, locate_option

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"
OPTIONS = sorted((g, p.stem) for g in GROUPS for p in (CONF / g).glob("*.yaml") if not p.stem.startswith("_"))
# shared fragments (not options): the keys several options of a group share, through their defaults list
FRAGMENTS = sorted((g, p.stem) for g in GROUPS for p in (CONF / g).glob("_*.yaml"))


@pytest.mark.parametrize("group,name", FRAGMENTS)
def test_a_shared_fragment_is_no_option_and_every_user_names_it(group, name):
    node = OmegaConf.load(CONF / group / f"{name}.yaml")
    assert "_target_" not in node and "name" not in node
    users = [p.stem for p in (CONF / group).glob("*.yaml")
             if name in (OmegaConf.load(p).get("defaults") or [])]
    assert users, f"{group}/{name}.yaml is used by no option"


def _env(**extra):
    return {**os.environ, "WANDB_MODE": "disabled", **extra}


def test_every_group_has_a_package_of_the_same_name():
    for group in GROUPS:
        assert (REPO / "certssb" / group / "__init__.py").is_file(), group
        assert (CONF / group).is_dir(), group


@pytest.mark.parametrize("group,name", OPTIONS)
def test_option_yaml_leads_to_its_code_in_one_hop(group, name):
    node = OmegaConf.load(CONF / group / f"{name}.yaml")
    if "_target_" not in node:  # an alias such as model/for_digits: `defaults: [mlp]`
        (alias,) = [d for d in node.defaults if d != "_self_"]
        assert (CONF / group / f"{alias}.yaml").is_file()
        return
    target = node["_target_"]
    assert target.startswith(f"certssb.{group}."), target  # the package named as the group
    cls = locate_option(group, target)
    assert cls.config_group == group and issubclass(cls, Option)
    settings = load_option(group, name, **_device(group, name))
    based_on = [d for d in node.get("defaults", []) if d != "_self_"]
    assert settings.name == name or (based_on and settings.name == based_on[0])  # e.g. sga_joint: an sga


def _device(group, name) -> dict:
    """``device=cpu`` for the options whose ``device`` interpolates another group (``${ensemble.device}``)."""
    from certssb.config import _option_node

    return {"device": "cpu"} if "${" in str(OmegaConf.to_container(_option_node(group, name)).get("device", "")) else {}


def _schema_fields(cls):
    return {f.name: f for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("group,name", [o for o in OPTIONS if "_target_" in OmegaConf.load(CONF / o[0] / f"{o[1]}.yaml")])
def test_each_value_is_written_once_in_the_yaml_and_typed_once_in_the_schema(group, name):
    node = OmegaConf.load(CONF / group / f"{name}.yaml")
    cls = locate_option(group, node["_target_"])
    fields = _schema_fields(cls)
    # the schema declares types only: no default value competes with the yaml's
    for f in fields.values():
        if dataclasses.is_dataclass(f.type) or f.default_factory is not dataclasses.MISSING:
            nested = f.default_factory()
            assert all(getattr(nested, g.name) == MISSING for g in dataclasses.fields(nested)), (cls, f.name)
        else:
            assert f.default == MISSING, f"{cls.__name__}.{f.name} has a default in code: put the value in the yaml"
    # every knob the code reads is in the yaml (through the option's own defaults list)
    merged = load_option(group, name, **_device(group, name))
    assert set(fields) == {f.name for f in dataclasses.fields(merged)}
    own = set(node.keys()) - {"_target_", "defaults"}
    assert own <= set(fields), own - set(fields)


def _help_groups(text: str) -> dict[str, dict]:
    """The ``== Config groups ==`` section of ``--help``: ``group -> {options, aliases, notes}``.

    Layout: ``group: a, b*`` (options wrap onto lines indented by 4 without ``: ``), then notes
    ``    word: text`` whose wrapped lines are indented by 6 (``aliases: x -> y, ...``)."""
    section = text.split("== Config groups", 1)[1].split("\n==", 1)[0].split("\n", 1)[1]
    groups: dict[str, dict] = {}
    current, note = None, None
    for line in section.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            name, _, rest = line.partition(": ")
            current, note = groups.setdefault(name, {"options": [], "aliases": {}, "notes": {}}), None
            current["options"] += [o.strip() for o in rest.split(",") if o.strip()]
        elif line.startswith("      ") and note is not None:
            current["notes"][note] += " " + line.strip()
        elif ": " in line:
            note, _, rest = line.strip().partition(": ")
            current["notes"][note] = rest
        else:
            assert note is None, f"option list after a note: {line!r}"
            current["options"] += [o.strip() for o in line.split(",") if o.strip()]
    for shown in groups.values():
        for pair in shown["notes"].get("aliases", "").split(","):
            if pair.strip():
                alias, target = (p.strip() for p in pair.split("->"))
                shown["aliases"][alias] = target
    return groups


def test_help_lists_only_real_groups_and_never_walks_the_repository(tmp_path):
    # stray folders that a walk of the current directory would list as config groups
    for stray in ("conf/bogus_group", "multirun_sweeps/method", ".venv/lib", "outputs/x"):
        (tmp_path / stray).mkdir(parents=True)
        (tmp_path / stray / "stray.yaml").write_text("x: 1\n")
    proc = subprocess.run([sys.executable, "-m", "certssb.run", "--help"], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    head = proc.stdout.splitlines()[:25]
    # the first screen: examples (default run, RAB vs Cert-SSB, a sweep), outputs, how to see options
    assert any(line.strip().startswith("python -m certssb.run ") and line.count("=") == 0 for line in head)
    assert any("sigma_optimiser=fixed" in line and "RAB" in line for line in head)
    assert any("ensemble=partition" in line and "DPA" in line for line in head)
    assert any("sweep=digits_offline" in line for line in head)
    assert any("outputs/<date>/<time>/" in line and "summary.json" in line and "certificates.csv" in line
               for line in head)
    assert any("multirun/" in line for line in head)
    assert any("certssb.tools.options attack/onepixel" in line for line in head)
    assert "_target_:" not in proc.stdout  # no composed-config dump
    groups = _help_groups(proc.stdout)
    # the run's groups, experiment bundles and the sweeper searches (hparams_search=NAME)
    assert set(groups) == {*GROUPS, "experiment", "hparams_search"}, groups
    for group, shown in groups.items():
        folder = REPO / "experiments" if group == "experiment" else CONF / group
        files = {p.stem: OmegaConf.load(p) for p in folder.glob("*.yaml")}
        aliases = {n: node for n, node in files.items() if group != "experiment" and set(node) == {"defaults"}}
        options = {n for n in files if n not in aliases and not n.startswith("_")}
        assert {o.rstrip("*") for o in shown["options"]} == options, group
        assert shown["aliases"] == {n: next(d for d in node.defaults if d != "_self_") for n, node in aliases.items()}
        assert sum(o.endswith("*") for o in shown["options"]) == (group in {*GROUPS} - {"model"})
    assert "digits*" in groups["dataset"]["options"] and groups["model"]["aliases"]["for_digits"] == "mlp"
    assert "stray" not in proc.stdout and "bogus_group" not in proc.stdout


def test_help_leaves_out_base_fragments_and_marks_aliases(tmp_path, monkeypatch):
    """A shared fragment ``_training.yaml`` (merged through defaults lists) is no option; an alias
    is shown as ``name -> option``; an option added by a yaml appears without code changes."""
    import shutil

    from certssb import catalog, helptext

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "ensemble" / "newcomer.yaml").write_text(
        "# a new option built on the fragment\ndefaults: [_training, _self_]\nname: newcomer\n")
    monkeypatch.setattr(catalog, "conf_dir", lambda: conf)
    text = helptext.groups_text()
    ensemble = next(line for line in text.splitlines() if line.startswith("ensemble: "))
    assert ensemble == "ensemble: bagging, finite_aggregation, gaussian*, newcomer, partition"
    assert "_training" not in text
    assert "for_digits -> mlp" in text and "model: digits_cnn, mlp," in text
    assert [f.name for f in catalog.merge_chain("ensemble", "newcomer")] == ["_training", "newcomer"]


def test_help_stays_fast():
    import time

    from certssb import helptext

    started = time.perf_counter()
    helptext.groups_text(), helptext.sweeps_text()
    assert time.perf_counter() - started < 1.0  # ~60 small yaml files; no walk, no torch


@pytest.mark.parametrize("module, args, expect", [
    ("certssb.run", ["--cfg", "job", "attack=onepixel"], "name: onepixel"),
    ("certssb.run", ["--cfg", "job", "sweep=digits_offline"], "name: onepixel"),
    ("certssb.run", ["--help"], "== Config groups"),
    ("certssb.tools.options", ["attack/onepixel"], "name: onepixel"),
    ("certssb.tools.options", ["model"], "for_digits -> mlp"),
    ("certssb.tools.sweeps", ["--check"], "digits_offline: 8 jobs"),
])
def test_cfg_job_does_not_import_torch(tmp_path, module, args, expect):
    code = (f"import sys; from {module} import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
            "print('TORCH_IMPORTED', 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert expect in proc.stdout, proc.stderr
    assert "TORCH_IMPORTED False" in proc.stdout


def test_experiment_without_plus():
    from conftest import compose_cfg

    cfg = compose_cfg(["experiment=digits_onepixel_binary"])
    assert cfg.attack.name == "onepixel" and list(cfg.dataset.classes) == [0, 1]


def test_attack_package_docstring_names_every_attack_option():
    import certssb.attack

    from conftest import REPO

    options = sorted(p.stem for p in (REPO / "conf" / "attack").glob("*.yaml"))
    assert len(options) >= 9
    missing = [name for name in options if f"``{name}``" not in certssb.attack.__doc__]
    assert not missing, f"certssb/attack/__init__.py does not list {missing}"


@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None,
                    reason="hydra-optuna-sweeper is not installed (pip install certssb[optuna])")
def test_hparams_search_without_plus():
    """``hparams_search: null`` in the defaults list: ``hparams_search=NAME`` selects a search like
    ``experiment=NAME`` (no ``+``), and without it the basic sweeper stays."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from certssb.run import BASIC_SWEEPER, CONF_DIR

    def sweeper(overrides):
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
                return compose("config", overrides=overrides, return_hydra_config=True).hydra.sweeper
        finally:
            GlobalHydra.instance().clear()

    optuna = sweeper(["hparams_search=sigma_optuna", "seed=3"])
    assert optuna._target_ == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert optuna.direction == "maximize" and optuna.sampler.seed == 3
    assert "sigma_optimiser.sigma_0" in optuna.params
    assert sweeper([])._target_ == BASIC_SWEEPER


PLUGIN = '''
"""A user's attack, outside certssb: shifts every image by a constant (its own parameter)."""
from dataclasses import dataclass

from omegaconf import MISSING

from certssb.attack.base import AdditiveTrigger
from certssb.attack.settings import AttackSettings


@dataclass
class ShiftSettings(AttackSettings):
    shift: float = MISSING

    def check(self, run):
        self.require_range("shift", 0.0, 1.0, low_open=True)
        super().check(run)

    def trigger(self, image_shape):
        import torch

        pattern = torch.full(tuple(image_shape), float(self.shift))
        return AdditiveTrigger("shift", pattern, float(pattern.norm()), clip=True)
'''


@pytest.mark.slow
def test_a_user_adds_an_attack_with_its_own_parameter_without_editing_certssb(tmp_path):
    (tmp_path / "userpkg").mkdir()
    (tmp_path / "userpkg" / "__init__.py").write_text("")
    (tmp_path / "userpkg" / "shift.py").write_text(textwrap.dedent(PLUGIN))
    (tmp_path / "userconf" / "attack").mkdir(parents=True)
    (tmp_path / "userconf" / "attack" / "shift.yaml").write_text(textwrap.dedent("""\
        # A user's attack: every pixel + shift.
        _target_: userpkg.shift.ShiftSettings
        name: shift
        poison_rate: 0.05
        target: 0
        shift: 0.1
        """))
    env = _env(PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    common = [f"hydra.searchpath=[file://{tmp_path / 'userconf'}]", "attack=shift", "ensemble.n_members=2",
              "ensemble.epochs=1", "undefended.enabled=false", "sigma_optimiser=fixed", "logger=none"]
    bad = subprocess.run([sys.executable, "-m", "certssb.run", *common, "attack.shift=2"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: attack.shift must be in (0.0, 1.0]; got 2.0", bad.stderr
    proc = subprocess.run([sys.executable, "-m", "certssb.run", *common, "attack.shift=0.2",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["attack"]["name"] == "shift" and summary["attack"]["n_poisoned"] > 0
    assert summary["attack"]["test_delta_l2_median"] > 0


@pytest.mark.slow
def test_a_built_wheel_runs_from_any_directory(tmp_path):
    """``pip wheel .`` then an install of the wheel (no source tree on the path) finds its configs."""
    wheel_dir, site = tmp_path / "wheel", tmp_path / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheel_dir), str(REPO)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheel_dir.glob("certssb-*.whl")
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                           str(wheel)], capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr[-2000:]
    assert (site / "certssb" / "_data" / "conf" / "config.yaml").is_file()
    assert (site / "certssb" / "_data" / "experiments").is_dir()
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = _env(PYTHONPATH=str(site))
    where = subprocess.run([sys.executable, "-c", "import certssb, certssb.resources as r; print(certssb.__file__);"
                            " print(r.conf_dir())"], cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert str(site) in where.stdout.splitlines()[0] and "_data" in where.stdout.splitlines()[1], where.stdout
    cfg = subprocess.run([sys.executable, "-m", "certssb.run", "--cfg", "job", "experiment=digits_badnets"], cwd=work,
                         env=env, capture_output=True, text=True, timeout=120)
    assert cfg.returncode == 0 and "n_members: 32" in cfg.stdout, cfg.stderr
    # the newcomer's tools read the wheel's copies of conf/ and multirun_sweeps/
    for args, expect in ((["-m", "certssb.run", "--help"], "for_digits -> mlp"),
                         (["-m", "certssb.run", "sweep=digits_offline", "--cfg", "job"], "name: onepixel"),
                         (["-m", "certssb.tools.options", "attack/onepixel"], "_data/conf/attack/onepixel.yaml"),
                         (["-m", "certssb.tools.sweeps", "digits_offline"], "digits_offline: 8 jobs")):
        proc = subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and expect in proc.stdout, (args, proc.stderr[-2000:])
    run = subprocess.run([sys.executable, "-m", "certssb.run", "ensemble.n_members=2", "ensemble.epochs=1",
                          "sigma_optimiser=fixed", "undefended.enabled=false", f"hydra.run.dir={work / 'run'}"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (work / "run" / "summary.json").is_file()


SIGMA_PLUGIN = '''
"""A user's sigma optimiser, outside certssb: one fixed training sigma per class, one test sigma."""
from dataclasses import dataclass
from typing import List

import torch
from omegaconf import MISSING

from certssb.sigma_optimiser.base import SigmaOptimiserSettings, Sigmas, constant


@dataclass
class PerClassSettings(SigmaOptimiserSettings):
    class_sigmas: List[float] = MISSING
    test_sigma: float = MISSING

    def check(self, run):
        if any(s <= 0 for s in self.class_sigmas):
            self.fail("class_sigmas", f"must all be > 0; got {list(self.class_sigmas)}")
        if run is not None and len(self.class_sigmas) != run.dataset.num_classes():
            self.fail("class_sigmas", f"must give one sigma per class ({run.dataset.num_classes()})")
        self.require_range("test_sigma", 0.0, None, low_open=True)

    def method_name(self):
        return "per-class-sigma"

    def recorded_sigma_0(self):
        return float(self.test_sigma)

    def data_independent(self):
        return False  # the sigmas follow the (possibly poisoned) labels

    def sigmas(self, run, factory, poisoned, x_test, device, cache_dir, data_fp, progress):
        train = torch.tensor(list(self.class_sigmas), dtype=torch.float32)[poisoned.y_train]
        n = len(x_test)
        return Sigmas(train, constant(n, self.test_sigma), constant(n, self.test_sigma), train.clone())
'''


@pytest.mark.slow
def test_a_user_adds_a_sigma_optimiser_without_editing_certssb(tmp_path):
    """The proof of the one-option rule for sigma_optimiser: a user's option (one module, one yaml in
    their own package and config dir) runs end to end, sweeps and certifies; its checks give one line."""
    (tmp_path / "usersigma").mkdir()
    (tmp_path / "usersigma" / "__init__.py").write_text("")
    (tmp_path / "usersigma" / "per_class.py").write_text(textwrap.dedent(SIGMA_PLUGIN))
    (tmp_path / "userconf" / "sigma_optimiser").mkdir(parents=True)
    (tmp_path / "userconf" / "sigma_optimiser" / "per_class.yaml").write_text(textwrap.dedent("""\
        # A user's sigma optimiser: a fixed training sigma per class, one test sigma.
        _target_: usersigma.per_class.PerClassSettings
        name: per_class
        class_sigmas: [0.3, 0.5]
        test_sigma: 0.4
        """))
    env = _env(PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    common = [f"hydra.searchpath=[file://{tmp_path / 'userconf'}]", "sigma_optimiser=per_class", "dataset.classes=[0,1]",
              "attack=onepixel", "ensemble.n_members=16", "ensemble.epochs=2", "certifier.alpha=0.1",
              "undefended.enabled=false", "logger=none"]
    bad = subprocess.run([sys.executable, "-m", "certssb.run", *common, "sigma_optimiser.class_sigmas=[0.3]"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip() == ("error: sigma_optimiser.class_sigmas must give one sigma per "
                                                          "class (2)"), bad.stderr
    sweep = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "-m", "certssb.run", "-m", *common, "sigma_optimiser.test_sigma=0.2,0.4",
                           f"hydra.sweep.dir={sweep}"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

    import pandas as pd

    jobs = sorted(p.parent for p in sweep.glob("*/summary.json"))
    assert len(jobs) == 2
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "complete" and summary["method"] == "per-class-sigma"
        test_sigma = summary["sigma_0"]
        assert summary["sigma"]["train_min"] == pytest.approx(0.3) and not summary["sigma"]["certificate_data_independent"]
        table = pd.read_csv(job / "certificates.csv")
        clean = table[table["split"] == "clean"]
        # the sound radius uses the smallest training sigma the user's option gave: min(s_x, 0.3) * G / 2
        assert ((clean["sigma"] - test_sigma).abs() < 1e-6).all()  # float32 sigmas
        expected = min(test_sigma, 0.3) * clean["whitened_budget"]
        assert ((clean["radius_joint"] - expected).abs() < 1e-6).all() and (clean["radius_joint"] > 0).any()
