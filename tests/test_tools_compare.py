"""tools.compare labels each run by what distinguishes it and warns once when runs differ in more
than the method; every tool describes each of its options and gives an example."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from certssb.tools import compare

REPO = Path(__file__).resolve().parent.parent
TOOLS = sorted([p.stem for p in (REPO / "certssb" / "tools").glob("*.py") if p.stem != "__init__"]
               + [p.parent.name for p in (REPO / "certssb" / "tools").glob("*/__main__.py")])


def _tool(module: str, args: list[str], cwd: Path):
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, "-m", f"certssb.tools.{module}", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------------------------ compare


def _summary(method="rab", certifier="storage_update", mode="hard", n=100, alpha=0.001, seed=0, sigma_0=0.25,
             dataset="digits", attack="badnets") -> dict:
    curve = {"radii": [0.0, 0.5], "certified_accuracy": {"joint": [0.9, 0.5], "paper": [0.9, 0.5]}}
    split = {"accuracy": 0.9, "acr": 0.3, "acr_by_variant": {"joint": 0.3, "paper": 0.3}}
    return {"status": "complete", "method": method, "seed": seed, "n_members": n, "sigma_0": sigma_0, "alpha": alpha,
            "certifier": {"name": certifier, "mode": mode}, "dataset": {"name": dataset},
            "attack": {"name": attack},
            "metrics": {"clean_accuracy": 0.9, "asr": 0.1, "clean": split, "triggered": split},
            "sigma": {"train_min": sigma_0, "test_clean": {"median": sigma_0}},
            "curves": {"clean": curve, "triggered": curve}}


def _run_dir(root: Path, name: str, summary: dict, overrides: list[str] | None = None,
             config: dict | None = None, choices: dict | None = None) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps(summary))
    if overrides is not None or config is not None:
        (d / ".hydra").mkdir()
        (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides or []))
        (d / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config or {}))
        (d / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices or {}}}}))
    return d


def test_compare_labels_show_every_difference_and_warn_once(tmp_path, capsys):
    """Two runs that differ in certifier and N were both labelled 'rab (sigma_0=0.25)'."""
    a = _run_dir(tmp_path, "a", _summary(certifier="rab", mode="soft", n=100))
    b = _run_dir(tmp_path, "b", _summary(certifier="storage_update", mode="hard", n=200))
    assert compare.main([str(a), str(b), "--split", "clean"]) == 0
    captured = capsys.readouterr()
    assert "| rab (certifier=rab, mode=soft, N=100) |" in captured.out
    assert "| rab (certifier=storage_update, mode=hard, N=200) |" in captured.out
    warning = captured.err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("warning: these runs differ in more than the method: ")
    assert "certifier (rab / storage_update)" in warning[0] and "N (100 / 200)" in warning[0]
    assert "mode (soft / hard)" in warning[0]


def test_compare_only_the_method_differs_no_warning(tmp_path, capsys):
    a = _run_dir(tmp_path, "fixed", _summary(method="rab"), ["sigma_optimiser=fixed"],
                 {"seed": 0, "sigma_optimiser": {"name": "fixed", "sigma_0": 0.25, "lr": 0.04}},
                 {"sigma_optimiser": "fixed"})
    b = _run_dir(tmp_path, "sga", _summary(method="cert-ssb"), ["sigma_optimiser=sga", "sigma_optimiser.lr=0.1"],
                 {"seed": 0, "sigma_optimiser": {"name": "sga", "sigma_0": 0.25, "lr": 0.1}},
                 {"sigma_optimiser": "sga"})
    assert compare.main([str(a), str(b), "--split", "clean"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "| rab (sigma_optimiser=fixed, sigma_optimiser.lr=0.04) |" in captured.out
    assert "| cert-ssb (sigma_optimiser=sga, sigma_optimiser.lr=0.1) |" in captured.out


def test_compare_reads_the_hydra_config_for_other_values(tmp_path):
    cfg = {"seed": 1, "dataset": {"name": "digits", "train_size": None},
           "ensemble": {"name": "default", "n_members": 100, "epochs": 10, "device": "cpu"},
           "certifier": {"name": "storage_update", "memory": {"enabled": True}}}
    other = json.loads(json.dumps(cfg))
    other["ensemble"].update(epochs=3, device="cuda")
    other["certifier"] = {"name": "rab", "memory": {"enabled": False}}
    runs = [(_run_dir(tmp_path, "x", _summary(seed=1), ["seed=1"], cfg, {"certifier": "storage_update"}),
             _summary(seed=1)),
            (_run_dir(tmp_path, "y", _summary(seed=1, certifier="rab"), ["ensemble.epochs=3", "certifier=rab"], other,
                      {"certifier": "rab"}), _summary(seed=1, certifier="rab"))]
    labels = compare.labels(runs)
    # ensemble.epochs differs within the same option: shown; memory.enabled follows from certifier=rab: not repeated
    assert labels == ["rab (certifier=storage_update, ensemble.device=cpu, ensemble.epochs=10)",
                      "rab (certifier=rab, ensemble.device=cuda, ensemble.epochs=3)"]
    warning = compare.mismatch_warning(runs)
    assert "certifier (storage_update / rab)" in warning and "ensemble.epochs (10 / 3)" in warning
    assert "device" not in warning and "memory" not in warning  # execution keys change no result


def test_compare_identical_configs_are_told_apart_by_folder(tmp_path):
    runs = [(_run_dir(tmp_path, n, _summary()), _summary()) for n in ("first", "second")]
    assert compare.labels(runs) == ["rab [first]", "rab [second]"]
    assert compare.mismatch_warning(runs) is None


@pytest.mark.slow
def test_compare_a_real_run_pair(tmp_path):
    """Two tiny real runs (RAB with the soft certifier at N=3 vs the default certifier at N=2)."""
    env = {**os.environ, "WANDB_MODE": "disabled"}
    common = ["dataset.classes=[0,1]", "dataset.test_size=20", "ensemble.epochs=1", "undefended.enabled=false",
              "sigma_optimiser=fixed", "attack=onepixel"]
    for name, extra in (("a", ["certifier=rab", "ensemble.n_members=3"]), ("b", ["ensemble.n_members=2"])):
        proc = subprocess.run([sys.executable, "-m", "certssb.run", *common, *extra, f"hydra.run.dir={tmp_path / name}"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
    proc = _tool("compare", [str(tmp_path / "a"), str(tmp_path / "b"), "--split", "clean"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "| rab (certifier=rab, mode=soft, N=3) |" in proc.stdout
    assert "| rab (certifier=storage_update, mode=hard, N=2) |" in proc.stdout
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("warning: ") and "certifier (rab / storage_update)" in line and "N (3 / 2)" in line


# ------------------------------------------------------------------------------- every tool


@pytest.mark.parametrize("name", TOOLS)
def test_every_tool_option_is_described(name):
    module = importlib.import_module(f"certssb.tools.{name}")
    if not hasattr(module, "main"):  # a library module of the tools (seeds, one_axis)
        return
    parser = module.build_parser()
    assert parser.prog == f"python -m certssb.tools.{name}"
    description = " ".join((parser.description or "").split())
    assert len(description) > 120 and f"Example: python -m certssb.tools.{name}" in description, description
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help and action.help != argparse.SUPPRESS, f"{name}: {action.option_strings or action.dest}"
