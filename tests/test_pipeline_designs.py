"""End to end: the sound sample-specific designs (grid, joint-aware SGA) through the pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

GRID = (0.12, 0.18, 0.25)
SMALL = ["undefended.enabled=false", "dataset.test_size=120"]  # the reference model is not under test here


def test_grid_run_records_the_chosen_sigma_and_the_alpha_it_paid(tmp_path, run_pipeline):
    summary = run_pipeline(tmp_path, [*SMALL, "sigma_optimiser=grid", "certifier=storage_update",
                                      f"sigma_optimiser.test_sigmas=[{','.join(map(str, GRID))}]"])
    assert summary["method"] == "cert-ssb-grid"
    sig = summary["sigma"]
    assert sig["train_min"] == 0.25 and sig["certificate_data_independent"] is True
    assert sig["train"]["min"] == sig["train"]["max"] == 0.25  # every training sample at sigma_train
    n_classes = summary["dataset"]["num_classes"]
    # hard votes, bonferroni over classes (10 classes) and the union bound over the grid
    expected = summary["alpha"] / (2 * n_classes) / len(GRID)
    assert summary["certifier"]["alpha_per_bound"] == pytest.approx(expected)
    assert sig["grid"]["alpha_per_bound"] == pytest.approx(expected)
    table = pd.read_csv(tmp_path / "certificates.csv")
    assert set(np.round(table["sigma"], 6)) <= set(GRID)
    # the sigma stats are those of the chosen test sigmas
    clean = table[table.split == "clean"]
    assert sig["test_clean"]["mean"] == pytest.approx(clean["sigma"].mean(), rel=1e-6)
    # every test sigma <= sigma_train, so the paper and joint radii coincide
    assert np.allclose(table["radius_joint"], table["radius_paper"])
    assert np.allclose(table["radius_joint"], table["sigma"] * table["whitened_budget"], rtol=1e-6)
    assert {"joint_memory", "paper_memory"} <= set(summary["curves"]["clean"]["certified_accuracy"])
    sigmas = np.load(tmp_path / "sigmas.npz")
    assert np.allclose(sigmas["test_clean"], clean["sigma"].to_numpy(), rtol=1e-6)


def test_grid_with_separate_selection_members(tmp_path, run_pipeline):
    summary = run_pipeline(tmp_path, [*SMALL, "sigma_optimiser=grid", "sigma_optimiser.selection=separate",
                                      "sigma_optimiser.selection_members=1", "certifier=rab"])
    # soft votes, complement/bonferroni per class only: no |S| factor
    assert summary["certifier"]["alpha_per_bound"] == pytest.approx(summary["alpha"] / (2 * 10))
    assert summary["sigma"]["grid"]["selection"] == "separate"


def test_joint_aware_sga_floors_training_sigmas(tmp_path, run_pipeline):
    summary = run_pipeline(tmp_path, [*SMALL, "sigma_optimiser=sga_joint", "certifier=storage_update",
                                      "sigma_optimiser.sigma_train_floor=0.3"])
    assert summary["method"] == "cert-ssb-joint"
    sig = summary["sigma"]
    assert sig["train"]["min"] >= 0.3 - 1e-6 and sig["train_min"] == pytest.approx(0.3)
    assert sig["objective"] == "joint" and sig["certificate_data_independent"] is True
    table = pd.read_csv(tmp_path / "certificates.csv")
    assert np.allclose(table["radius_joint"], np.minimum(table["sigma"], 0.3) * table["whitened_budget"], rtol=1e-6)


def test_grid_ensembles_reuses_rab_members_and_pays_the_union_bound(tmp_path, run_pipeline):
    """grid_ensembles over RAB's ensembles: with one training sigma it IS RAB (same members, same
    votes, |S| = 1); with two it certifies each input with one of them at alpha / 2."""
    # two classes and 40 members: radii > 0, so the choice between the ensembles is a real one
    common = ["undefended.enabled=false", "dataset.classes=[1,7]", "ensemble.n_members=40", "certifier=rab",
              f"ensemble.checkpoint_dir={tmp_path / 'members'}"]
    rab = {s: run_pipeline(tmp_path / f"rab{s}", [*common, "sigma_optimiser=fixed", f"sigma_optimiser.sigma_0={s}"])
           for s in (0.25, 0.5)}
    tables = {s: pd.read_csv(tmp_path / f"rab{s}" / "certificates.csv") for s in rab}
    one = run_pipeline(tmp_path / "one", [*common, "sigma_optimiser=grid_ensembles", "sigma_optimiser.sigma_trains=[0.25]"])
    assert one["method"] == "cert-ssb-grid-ensembles" and one["members"]["trained_now"] == 0
    t1 = pd.read_csv(tmp_path / "one" / "certificates.csv")
    assert np.array_equal(t1["prediction"], tables[0.25]["prediction"])
    assert np.allclose(t1["radius_joint"], tables[0.25]["radius_joint"], rtol=0, atol=1e-12)

    two = run_pipeline(tmp_path / "two", [*common, "sigma_optimiser=grid_ensembles",
                                          "sigma_optimiser.sigma_trains=[0.25,0.5]"])
    assert two["members"]["trained_now"] == 0 and len(two["members"]["checkpoint_dirs"]) == 2
    assert two["certifier"]["alpha_per_bound"] == pytest.approx(rab[0.25]["certifier"]["alpha_per_bound"] / 2)
    assert two["sigma"]["grid"]["candidates"] == [[0.25, 0.25], [0.5, 0.5]]
    t2 = pd.read_csv(tmp_path / "two" / "certificates.csv")
    chosen = np.round(t2["sigma_train_certified"].to_numpy(), 6)
    assert set(chosen) == {0.25, 0.5}  # both ensembles are chosen for some inputs (the test has power)
    assert np.allclose(t2["sigma"], t2["sigma_train_certified"])  # test_sigmas null: each at its own sigma
    assert np.allclose(t2["radius_joint"], t2["sigma"] * t2["whitened_budget"], rtol=1e-9)
    # the chosen ensemble's prediction, and bounds at alpha / 2 never certify more than RAB at alpha
    for s in (0.25, 0.5):
        rows = (chosen == s) & (t2["radius_joint"] > 0).to_numpy()
        assert np.array_equal(t2["prediction"][rows], tables[s]["prediction"][rows])
        assert np.all(t2["radius_joint"][rows] <= tables[s]["radius_joint"][rows] + 1e-12)
    best = np.maximum(tables[0.25]["radius_joint"], tables[0.5]["radius_joint"])
    assert np.all(t2["radius_joint"] <= best + 1e-12)


def test_grid_select_poison_count_certifies_at_least_as_many_poisoned_samples(tmp_path, run_pipeline):
    """The same members and bounds, two selection rules: ``poison_count`` picks, per input, the grid
    position with the most certified poisoned samples, so its count is never below the ``radius``
    rule's and its radius never above it."""
    common = [*SMALL, "sigma_optimiser=grid", "sigma_optimiser.sigma_train=0.5", "certifier=rab",
              "sigma_optimiser.test_sigmas=[0.12,0.25,0.5]", "certifier.poison_eps=0.05", "certifier.poison_eta=0.02",
              "ensemble.n_members=60", "certifier.mode=hard", f"ensemble.checkpoint_dir={tmp_path / 'members'}"]
    by_radius = run_pipeline(tmp_path / "radius", common)
    by_count = run_pipeline(tmp_path / "count", [*common, "certifier.grid_select=poison_count"])
    assert (by_radius["certifier"]["grid_select"], by_count["certifier"]["grid_select"]) == ("radius", "poison_count")
    assert by_count["certifier"]["alpha_per_bound"] == by_radius["certifier"]["alpha_per_bound"]
    r = pd.read_csv(tmp_path / "radius" / "certificates.csv")
    c = pd.read_csv(tmp_path / "count" / "certificates.csv")
    assert (r["index"].to_numpy() == c["index"].to_numpy()).all()
    assert (c["certified_poison_count"].to_numpy() >= r["certified_poison_count"].to_numpy()).all()
    assert (c["radius_joint"].to_numpy() <= r["radius_joint"].to_numpy() + 1e-12).all()
    changed = c["sigma"].to_numpy() != r["sigma"].to_numpy()
    assert changed.any(), "the two rules never disagree: the test has no power"
    assert (c["certified_poison_count"].to_numpy()[changed] > r["certified_poison_count"].to_numpy()[changed]).all()
