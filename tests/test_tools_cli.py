"""The small command-line tools: options (an option's yaml with comments) and sweeps (what each
sweep file runs; the counts its header states)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from certssb import catalog
from certssb.tools import options, sweeps

REPO = Path(__file__).resolve().parent.parent


def _tool(module: str, args: list[str], cwd: Path):
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, "-m", f"certssb.tools.{module}", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------------------------ options


def test_options_prints_the_yaml_with_its_comments_from_any_directory(tmp_path):
    proc = _tool("options", ["attack/onepixel"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = (REPO / "conf" / "attack" / "onepixel.yaml").read_text()
    assert written.strip() in proc.stdout  # as written, every comment included
    assert proc.stdout.splitlines()[0] == f"# ==> {REPO / 'conf' / 'attack' / 'onepixel.yaml'}  [attack/onepixel]"


def test_options_follows_the_defaults_list_in_merge_order(capsys):
    assert options.main(["sigma_optimiser/sga_joint"]) == 0
    out = capsys.readouterr().out
    heads = [line for line in out.splitlines() if line.startswith("# ==> ")]
    assert [Path(h.split()[2]).name for h in heads] == ["sga.yaml", "sga_joint.yaml"]
    assert "merged 1 of 2" in heads[0] and "merged last" in heads[1]
    assert out.index("objective: paper") < out.index("objective: joint")  # the later file wins
    assert options.main(["model/for_digits"]) == 0
    out = capsys.readouterr().out
    assert [Path(h.split()[2]).name for h in out.splitlines() if h.startswith("# ==> ")] == ["mlp.yaml",
                                                                                          "for_digits.yaml"]
    assert "model=for_digits is an alias of model=mlp" in out


def test_options_lists_a_group_with_first_comment_lines(capsys):
    assert options.main(["model"]) == 0
    out = capsys.readouterr().out
    for f in catalog.files("model"):
        row = next(line for line in out.splitlines() if line.strip().startswith(f.name + " "))
        assert f.comment and f.comment in row
        assert ("->" in row) == (f.kind == "alias")
    assert options.main(["experiment"]) == 0  # served from experiments/; '@package' lines skipped
    out = capsys.readouterr().out
    assert "@package" not in out and "digits_badnets" in out
    assert options.main([]) == 0
    out = capsys.readouterr().out
    for group in catalog.groups():
        row = next(line for line in out.splitlines() if line.split()[:1] == [group])
        n_alias = sum(f.kind == "alias" for f in catalog.files(group))
        assert f"{len(catalog.option_names(group)) - n_alias} option" in row
        assert ("alias" in row) == bool(n_alias)


@pytest.mark.parametrize("what, expected", [
    ("attack/onepixl", "error: attack/onepixl is not an option of attack; did you mean attack/onepixel? (options: "),
    ("atack", "error: atack is not a config group; did you mean attack? (groups: "),
    ("atack/onepixel", "error: atack is not a config group; did you mean attack?"),
    ("ensemble/qqqq", "error: ensemble/qqqq is not an option of ensemble (options: bagging, finite_aggregation, gaussian, partition)"),
])
def test_options_unknown_names_are_one_line_with_the_closest(capsys, what, expected):
    assert options.main([what]) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected) and len(err.strip().splitlines()) == 1, err


def test_options_lists_base_fragments_apart(tmp_path, monkeypatch, capsys):
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    (conf / "ensemble" / "_training.yaml").write_text("# Shared training knobs.\nepochs: 3   # passes\n")
    (conf / "ensemble" / "partition.yaml").write_text("# Partition ensemble.\ndefaults: [_training, _self_]\n"
                                                      "name: partition\nepochs: 5\n")
    monkeypatch.setattr(catalog, "conf_dir", lambda: conf)
    assert options.main(["ensemble"]) == 0
    out = capsys.readouterr().out
    options_part, fragments = out.split("base fragments", 1)
    assert "_training" not in options_part and "partition" in options_part and "_training" in fragments
    assert options.main(["ensemble/partition"]) == 0
    out = capsys.readouterr().out
    assert out.index("epochs: 3   # passes") < out.index("epochs: 5")


# ------------------------------------------------------------------------------------- sweeps


def test_sweeps_lists_every_file_with_its_jobs(tmp_path):
    proc = _tool("sweeps", [], tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in catalog.sweep_names():
        assert f"\n{name}: " in proc.stdout
    assert "digits_offline: 8 jobs" in proc.stdout
    assert "swept: sigma_optimiser (2: fixed, sga_light) x sigma_optimiser.sigma_0 (4: 0.12, 0.25, 0.5, 1.0)" in proc.stdout
    assert "results_digits_badnets: 33 jobs" in proc.stdout
    assert "paper_table: 24 jobs" in proc.stdout


def test_sweep_jobs_match_hydras_basic_sweeper():
    sweep = sweeps.sweep_file("attack_grid_badnets")
    assert len(sweep.jobs) == 6 and sweep.basic
    assert sweep.jobs[0] == ["attack=badnets", "attack.poison_rate=0.01", "attack.patch_size=2"]
    # command-line overrides replace a param of the same key, as Hydra does
    more = sweeps.expand(str(catalog.sweeps_dir()), "attack_grid_badnets", ["attack.patch_size=4", "seed=0,1"])
    assert len(more.jobs) == 6 and more.params["attack.patch_size"] == ["4"] and more.params["seed"] == ["0", "1"]


def test_a_non_basic_sweeper_is_named():
    sweep = sweeps.expand(str(catalog.conf_dir()), "config", ["hparams_search=sigma_optuna"])
    assert not sweep.basic and "Optuna" in sweep.sweeper
    text = sweeps.describe(sweep)
    assert "OptunaSweeper (not the basic sweeper), 20 trials" in text
    assert "sigma_optimiser.sigma_0: interval(0.25, 1.0)" in text


@pytest.mark.parametrize("name", catalog.sweep_names())
def test_sweep_header_comments_state_true_counts(name):
    """Where a sweep file's header states a count ("four noise levels", "three seeds",
    "33 jobs"), it is what its params make."""
    sweep = sweeps.sweep_file(name)
    header = sweeps.header_text(name)
    assert header, f"{name}.yaml has no header comment"
    assert not sweeps.count_mismatches(sweep, header)
    commands = [line for line in catalog.comment_lines(catalog.sweep_path(name)) if "--config-name" in line]
    assert all(f"--config-name {name}" in c for c in commands), commands  # no copy-paste from another file


def test_count_check_catches_a_stale_description():
    sweep = sweeps.sweep_file("digits_offline")
    assert sweeps.count_mismatches(sweep, "RAB vs Cert-SSB x two sigma_0") == [
        "says 'two sigma_0' but sweeps 4 values of sigma_optimiser.sigma_0 (0.12, 0.25, 0.5, 1.0)"]
    assert sweeps.count_mismatches(sweep, "three seeds") == ["says 'three seeds' but does not sweep seed"]
    assert sweeps.count_mismatches(sweep, "10 jobs") == ["says '10 jobs' but makes 8 jobs"]
    assert sweeps.count_mismatches(sweep, "one job per GPU, the paper's four noise levels") == []


def test_sweeps_unknown_name(capsys):
    assert sweeps.main(["digits_ofline"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: digits_ofline is not a sweep file; did you mean digits_offline?")
