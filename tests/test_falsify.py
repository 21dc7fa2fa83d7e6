"""Empirical falsification check of the certificates (certssb.tools.falsify).

Real clean-label poisoning + test-time perturbations of joint L2 size R_joint(x)/2, members
retrained with the same seeds, sigmas and noise: no smoothed prediction may change. A power
check at 10x R must flip some, which shows the check can fail at all.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from certssb.tools.falsify import FalsifyConfig, build_attack, main, run_falsification, walk


def test_build_attack_respects_budget_and_box():
    g = torch.Generator().manual_seed(0)
    x_train = torch.rand((20, 1, 4, 4), generator=g)
    y_train = torch.tensor([0, 1] * 10)
    x_test = torch.rand((5, 1, 4, 4), generator=g)
    idx = np.array([1, 3])
    budget = np.array([0.3, 0.5])
    atk = build_attack(x_train, y_train, x_test, idx, budget, target=1, k_poison=3, train_share=0.7)
    assert len(atk.poisoned_index) == 3
    assert np.all(y_train[torch.from_numpy(atk.poisoned_index)].numpy() == 1)  # clean-label: target class only
    changed = torch.nonzero((atk.x_train != x_train).flatten(1).any(1)).flatten().numpy()
    assert set(changed) <= set(atk.poisoned_index.tolist())
    assert np.all(atk.joint_l2() <= budget)
    assert atk.joint_l2()[0] > 0.99 * 0.3 and atk.joint_l2()[1] > 0.99 * 0.5  # the budget is used
    assert float(atk.x_train.min()) >= 0 and float(atk.x_train.max()) <= 1
    assert float(atk.x_test.min()) >= 0 and float(atk.x_test.max()) <= 1
    # the realised sizes are what the tensors say
    td = (atk.x_test - x_test[torch.from_numpy(idx)]).flatten(1).double().norm(dim=1).numpy()
    assert np.allclose(td, atk.test_delta_l2)


def test_walk_is_capped_by_arc_length():
    a, b, c = torch.zeros(4), torch.tensor([1.0, 0, 0, 0]), torch.tensor([1.0, 1, 0, 0])
    assert torch.allclose(walk(a, [b, c], 0.5), torch.tensor([0.5, 0, 0, 0]))
    assert torch.allclose(walk(a, [b, c], 1.5), torch.tensor([1.0, 0.5, 0, 0]))
    assert torch.allclose(walk(a, [b, c], 9.0), c)


@pytest.mark.slow
def test_no_flip_within_half_radius_and_power_check_flips(tmp_path):
    cfg = FalsifyConfig(members=100, attacks=16, seed=0, sigma="sga", sigma_0=0.5, sga_iterations=20,
                        sga_draws=16, epochs=8, surrogate_epochs=8, k_poison=4, inputs_per_delta=2,
                        test_attack="pgd", power_scales=(10.0,), threads=1)
    report = run_falsification(cfg, out=tmp_path)
    assert (tmp_path / "falsify.json").is_file()
    assert json.loads((tmp_path / "falsify.json").read_text())["summary"] == report["summary"]
    assert report["control_votes_identical"] is True  # same seeds/sigmas/data -> the same votes
    within = report["within"]
    assert within["tried"] >= 10
    for p in within["pairs"]:
        assert p["joint_l2"] <= 0.5 * p["r_joint"] + 1e-12
    flips = [p for p in within["pairs"] if p["flipped"]]
    assert within["flipped"] == 0, f"certificate violated within R/2: {flips}"
    power = report["power"][-1]
    assert power["tried"] >= 10
    assert power["flipped"] >= 1, "the power check never flips: the falsification test has no power"
    assert report["summary"].startswith(f"falsification: tried={within['tried']} flipped=0 (within R/2)")


@pytest.mark.slow
def test_cli_rab_fixed_sigma(tmp_path, capsys):
    rc = main(["--members", "30", "--attacks", "4", "--sigma", "fixed", "--epochs", "6", "--inputs-per-delta", "2",
               "--power-scales", "10", "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    line = out.strip().splitlines()[-1]
    assert line.startswith("falsification: tried=") and "(within R/2); power check: tried=" in line
    report = json.loads((tmp_path / "falsify.json").read_text())
    assert report["sigma"]["train_min"] == pytest.approx(0.5)
    assert report["within"]["flipped"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("design", [
    dict(sigma="grid", sigma_0=0.5, test_sigmas=(0.25, 0.35, 0.5)),
    dict(sigma="sga", sigma_0=0.5, objective="joint", floor=0.5, sga_iterations=20, sga_draws=16),
], ids=["grid", "sga-joint"])
def test_sound_designs_no_flip_within_half_radius_and_power_check_flips(tmp_path, design):
    """grid and joint-aware SGA: certified with a data-independent training sigma (0.5)."""
    cfg = FalsifyConfig(members=40, attacks=6, seed=0, epochs=6, surrogate_epochs=6, k_poison=4,
                        inputs_per_delta=2, test_attack="pgd", power_scales=(10.0,), threads=1, **design)
    report = run_falsification(cfg, out=tmp_path)
    assert report["sigma"]["train_min"] == pytest.approx(0.5)  # sigma_train / the floor, not data-dependent
    assert report["sigma"]["trained_min"] >= 0.5 - 1e-6  # floors hold in training
    assert report["control_votes_identical"] is True
    within = report["within"]
    assert within["tried"] >= 4
    for p in within["pairs"]:
        assert p["joint_l2"] <= 0.5 * p["r_joint"] + 1e-12
        if design["sigma"] == "grid":
            assert min(abs(p["sigma_x"] - s) for s in design["test_sigmas"]) < 1e-6  # a grid sigma
    assert within["flipped"] == 0, [p for p in within["pairs"] if p["flipped"]]
    assert report["power"][-1]["flipped"] >= 1, "the power check never flips: no power"


@pytest.mark.slow
def test_grid_ensembles_no_flip_within_half_radius_and_power_check_flips(tmp_path):
    """grid_ensembles: each attacked input is retrained and attacked on the ensemble (training
    sigma) that certified it, within half of ITS radius min(s, sigma_T) * G / 2."""
    trains, tests = (0.25, 0.5), (0.25, 0.35, 0.5)
    cfg = FalsifyConfig(members=40, attacks=8, seed=0, epochs=6, k_poison=4, inputs_per_delta=1,
                        test_attack="pgd", power_scales=(10.0,), threads=1, sigma="grid_ensembles",
                        sigma_trains=trains, test_sigmas=tests)
    report = run_falsification(cfg, out=tmp_path)
    sig = report["sigma"]
    assert sig["sigma_trains"] == pytest.approx(list(trains)) and sig["train_min"] == pytest.approx(0.25)
    assert sum(sig["inputs_by_train_sigma"].values()) == report["dataset"]["n_test"]
    assert report["control_votes_identical"] is True
    within = report["within"]
    assert within["tried"] >= 6
    for p in within["pairs"]:
        assert min(abs(p["sigma_train"] - t) for t in trains) < 1e-6
        assert min(abs(p["sigma_x"] - s) for s in tests) < 1e-6 and p["sigma_x"] <= p["sigma_train"] + 1e-6
        assert p["joint_l2"] <= 0.5 * p["r_joint"] + 1e-12
    assert all(n >= 1 for n in sig["inputs_by_train_sigma"].values())  # both ensembles certify inputs
    assert within["flipped"] == 0, [p for p in within["pairs"] if p["flipped"]]
    assert report["power"][-1]["flipped"] >= 1, "the power check never flips: no power"


def test_bad_design_options_are_one_line_errors(tmp_path, capsys):
    rc = main(["--sigma", "grid", "--sigma-0", "0.3", "--test-sigmas", "0.5", "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: sigma_optimiser.test_sigmas must all be <= sigma_train") and "\n" not in err
    rc = main(["--sigma", "grid_ensembles", "--sigma-trains", "-1", "0.5", "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: sigma_optimiser.sigma_trains") and "\n" not in err
    rc = main(["--objective", "joint", "--out", str(tmp_path)])
    assert rc == 2 and "sigma_optimiser.sigma_train_floor must be set with objective=joint" in capsys.readouterr().err
