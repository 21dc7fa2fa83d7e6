"""End to end on the embedded digits data: outputs, curve sanity, determinism, resume."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from certssb.ensemble.checkpoints import CheckpointStore

RAB = ["sigma_optimiser=fixed", "certifier=rab"]


def _attacker_terms_consistent(summary, table):
    """The poison-count curves and columns agree with each other and with the radius curves."""
    n_train = summary["dataset"]["n_train"]
    for split in ("clean", "triggered", "triggered_all"):
        pc = summary["curves"][split]["poison_count"]
        assert pc["counts"][0] == 0 and pc["counts"][-1] == n_train
        assert list(pc["certified_accuracy"])[0] == "joint"  # the sound variant first
        rows = table[table.split == split]
        for variant, values in pc["certified_accuracy"].items():
            v = np.asarray(values)
            assert np.all(np.diff(v) <= 1e-12), (split, variant, v)  # non-increasing in k
            col = "certified_poison_count" + ("_joint_memory" if variant == "joint_memory" else "")
            correct = rows["correct" + ("_joint_memory" if variant == "joint_memory" else "")].to_numpy()
            counts = rows[col].to_numpy()
            expect = [np.mean(correct & (counts >= k)) for k in pc["counts"]]
            np.testing.assert_allclose(v, expect, rtol=0, atol=1e-12)
        assert rows["certified_poison_count"].between(-1, n_train).all()
        # k = 0 is the test trigger alone: exactly the test-time (paper) radius exceeding eps
        # (inputs within 1e-9 of the boundary are skipped: the csv rounds to 10 digits)
        margin = (rows["radius_paper"] - pc["eps"]).abs() > 1e-9
        alone = (rows["certified_poison_count"] >= 0)[margin]
        assert (alone == (rows["radius_paper"] > pc["eps"])[margin]).all()
        m = summary["metrics"][split]
        assert isinstance(m["acr"], float) and m["acr"] == m["acr_by_variant"]["joint"]
        assert list(m["acr_by_variant"])[0] == "joint" and "budget" not in m["acr_by_variant"]
        assert set(m["covered_fraction"]) >= {"exact", "joint_l2_ball"} and "paper" not in m["covered_fraction"]
        assert m["covered_fraction"]["exact"] == pytest.approx(rows["covered_exact"].mean())
        # the exact ellipsoid covers at least what the inscribed L2 ball covers
        assert m["covered_fraction"]["exact"] >= m["covered_fraction"]["joint_l2_ball"]
        assert "budget" not in summary["curves"][split]["certified_accuracy"]  # nothing whitened on an L2 axis
    assert set(summary["certified_statement"]) == {"clean", "triggered"}


def _curves_sane(summary):
    for split in ("clean", "triggered"):
        curve = summary["curves"][split]
        assert len(curve["radii"]) == 11
        acc = summary["metrics"][split]["accuracy"]
        for variant, values in curve["certified_accuracy"].items():
            v = np.asarray(values)
            assert np.all(np.diff(v) <= 1e-12), (split, variant, v)
            # certified (and memory-relabelled) accuracy never above the accuracy it certifies
            bound = acc if not variant.endswith("_memory") else summary["memory"][split][variant[:-7]]["accuracy"]
            assert v[0] <= bound + 1e-12


def test_rab_run_writes_the_output_contract(tmp_path, run_pipeline):
    summary = run_pipeline(tmp_path, RAB)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["status"] == "complete" and on_disk["method"] == "rab"
    m = on_disk["metrics"]
    for key in ("clean_accuracy", "asr", "undefended_clean_accuracy", "undefended_asr", "attack_joint_l2"):
        assert isinstance(m[key], float), key
    assert on_disk["n_members"] == 4 and on_disk["alpha"] == 0.001 and on_disk["seed"] == 0
    assert on_disk["timings"]["total_s"] > 0 and on_disk["timings"]["train_s"] > 0
    dev = on_disk["device"]
    assert dev["type"] == "cpu" and dev["precision"] == "fp32" and dev["torch"] and "cuda" in dev
    for split in ("clean", "triggered", "triggered_all"):
        ca = on_disk["curves"][split]["certified_accuracy"]
        assert list(ca) == ["joint", "paper"]
        # fixed sigma: paper and joint coincide
        assert ca["joint"] == ca["paper"]
    _curves_sane(summary)
    table = pd.read_csv(tmp_path / "certificates.csv")
    for col in ("split", "index", "label", "prediction", "sigma", "p_a_lower", "p_b_upper",
                "radius_joint", "radius_paper", "correct", "whitened_budget", "attack_whitened", "covered_exact",
                "certified_poison_count"):
        assert col in table.columns
    _attacker_terms_consistent(on_disk, table)
    # fixed sigma: the exact ellipsoid test is the L2 test joint_l2 < sigma * G / 2, and the
    # count has the closed form k < sigma^2 ((G/2)^2 - eps^2 / sigma^2) / eta^2
    pc = on_disk["curves"]["clean"]["poison_count"]
    s0, eta, eps = on_disk["sigma_0"], pc["eta"], pc["eps"]
    assert eta > 0 and eps > 0  # the default: the attack's realised trigger sizes
    b = table["whitened_budget"].to_numpy()
    bound = s0 ** 2 * (b ** 2 - eps ** 2 / s0 ** 2) / eta ** 2
    closed = np.where(bound > 0, np.minimum(np.ceil(bound) - 1, on_disk["dataset"]["n_train"]), -1)
    safe = np.abs(bound - np.round(bound)) > 1e-6
    assert (table["certified_poison_count"].to_numpy()[safe] == closed[safe]).all()
    safe = (table["radius_joint"] - table["attack_joint_l2"]).abs() > 1e-9
    assert (table["covered_exact"][safe] == (table["radius_joint"] > table["attack_joint_l2"])[safe]).all()
    assert (tmp_path / "certified_poison_count.png").stat().st_size > 1000
    assert set(table["split"]) == {"clean", "triggered", "triggered_all"}
    clean = table[table.split == "clean"]
    assert len(clean) == on_disk["dataset"]["n_test"]
    assert np.isclose(clean["correct"].mean(), m["clean_accuracy"])
    trig = table[table.split == "triggered"]
    assert (trig["label"] != 0).all()  # convention (a): non-target inputs, true labels
    assert (table[table.split == "triggered_all"]["label"] == 0).all()  # convention (b)
    # abstained inputs have radius 0; certified ones satisfy pA_lower > pB_upper
    assert (table.loc[table.abstain, "radius_joint"] == 0).all()
    assert (table.loc[~table.abstain, "p_a_lower"] > table.loc[~table.abstain, "p_b_upper"]).all()
    assert (tmp_path / "certified_accuracy.png").stat().st_size > 1000


def test_same_seed_same_results_and_resume_after_interrupt(tmp_path, run_pipeline, monkeypatch):
    full = tmp_path / "full"
    summary_a = run_pipeline(full, RAB + ["ensemble.vectorise=false"])

    # Interrupt a second run after two members are saved.
    interrupted = tmp_path / "interrupted"
    real_save = CheckpointStore.save
    calls = {"n": 0}

    def save_then_die(self, k, *args, **kwargs):
        real_save(self, k, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated interrupt")

    monkeypatch.setattr(CheckpointStore, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(interrupted, RAB + ["ensemble.vectorise=false"])
    monkeypatch.setattr(CheckpointStore, "save", real_save)
    summary_b = run_pipeline(interrupted, RAB + ["ensemble.vectorise=false"])
    assert summary_b["members"]["trained_now"] == 2  # only the missing members

    for key in ("clean_accuracy", "asr", "undefended_clean_accuracy", "undefended_asr"):
        assert summary_a["metrics"][key] == summary_b["metrics"][key]
    assert summary_a["curves"] == summary_b["curves"]
    a = pd.read_csv(full / "certificates.csv")
    b = pd.read_csv(interrupted / "certificates.csv")
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-5, atol=1e-6)


def test_cert_ssb_run_with_memory(tmp_path, run_pipeline):
    summary = run_pipeline(tmp_path, ["sigma_optimiser=sga", "certifier=storage_update", "certifier.poison_eps=0"])
    assert summary["method"] == "cert-ssb"
    table = pd.read_csv(tmp_path / "certificates.csv")
    assert table["sigma"].nunique() > 1  # sample-specific
    assert (table["sigma"] > 0).all()
    assert (table["radius_joint"] <= table["radius_paper"] + 1e-12).all()
    for split in ("clean", "triggered"):
        ca = summary["curves"][split]["certified_accuracy"]
        assert list(ca) == ["joint", "joint_memory", "paper", "paper_memory"]
        pc = summary["curves"][split]["poison_count"]
        assert pc["eps"] == 0.0 and pc["eps_source"] == "certifier.poison_eps"
        # eps = 0: certified against k = 0 poisoned samples exactly when certified at radius 0
        for variant in ("joint", "joint_memory"):
            assert pc["certified_accuracy"][variant][0] == pytest.approx(ca[variant][0], abs=1e-12)
    _attacker_terms_consistent(summary, table)
    # the memory's final certificate never certifies more than the raw one (kept / trimmed inputs)
    own = table["action_joint_memory"] != "relabelled"
    assert (table.loc[own, "certified_poison_count_joint_memory"] <= table.loc[own, "certified_poison_count"]).all()
    assert (~table.loc[own, "covered_exact_joint_memory"] | table.loc[own, "covered_exact"]).all()
    assert {"clean", "triggered", "triggered_all"} <= set(summary["memory"])
    assert (tmp_path / "sigma_histogram.png").exists()
    sig = np.load(tmp_path / "sigmas.npz")
    assert sig["train"].shape[0] == summary["dataset"]["n_train"]
    _curves_sane(summary)


def test_member_ranges_split_over_jobs_then_certify_once(tmp_path, run_pipeline):
    ckpt = tmp_path / "shared_members"
    common = RAB + [f"ensemble.checkpoint_dir={ckpt}", "ensemble.vectorise=false"]
    part = run_pipeline(tmp_path / "job0", common + ["ensemble.member_range=[0,2]"])
    assert part["status"] == "members_trained" and part["n_trained_now"] == 2
    assert not (tmp_path / "job0" / "certificates.csv").exists()
    part = run_pipeline(tmp_path / "job1", common + ["ensemble.member_range=[2,3]"])
    assert part["n_trained_now"] == 1
    final = run_pipeline(tmp_path / "final", common)
    assert final["status"] == "complete" and final["members"]["trained_now"] == 1  # only member 3
    reference = run_pipeline(tmp_path / "reference", RAB + ["ensemble.vectorise=false"])
    assert final["curves"] == reference["curves"]


def test_shared_memory_across_test_sets(tmp_path, run_pipeline):
    summary = run_pipeline(tmp_path, ["sigma_optimiser=fixed", "certifier=storage_update",
                                      "certifier.memory.shared=true", "certifier.memory.order=shuffle"])
    assert summary["memory"]["clean"]["shared"] is True and summary["memory"]["clean"]["order"] == "shuffle"
    table = pd.read_csv(tmp_path / "certificates.csv")
    trig = table[table.split == "triggered"].set_index("index")
    trig_all = table[table.split == "triggered_all"].set_index("index").loc[trig.index]
    # the RAB-convention set reads its memory entries from the shared memory's triggered_all ones
    for col in ("prediction_joint_memory", "radius_joint_memory", "action_joint_memory"):
        assert (trig[col].to_numpy() == trig_all[col].to_numpy()).all()
    # invariant across the whole shared memory (clean and triggered inputs together):
    # stored balls with different labels do not overlap
    from certssb.attack import poison
    from certssb.config import parse_run
    from certssb.dataset import load_dataset

    from conftest import fast_cfg

    cfg = parse_run(fast_cfg(["sigma_optimiser=fixed", "certifier=storage_update"]))
    splits = load_dataset(cfg.dataset, 0).to_float()  # float splits: whole triggered tensors below
    poisoned = poison(splits, cfg.attack, 0)
    clean = table[table.split == "clean"].sort_values("index")
    t_all = table[table.split == "triggered_all"].sort_values("index")
    x = np.concatenate([splits.x_test.flatten(1).numpy(), poisoned.x_test_triggered.flatten(1).numpy()]).astype(float)
    labels = np.concatenate([clean["prediction_joint_memory"], t_all["prediction_joint_memory"]])
    radii = np.concatenate([clean["radius_joint_memory"], t_all["radius_joint_memory"]])
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    differ = labels[:, None] != labels[None, :]
    assert (d[differ] >= (radii[:, None] + radii[None, :])[differ] - 1e-6).all()
