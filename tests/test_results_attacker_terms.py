"""certify_split with the certificate training sigmas, and the plain sentences of the console."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from certssb.certifier import RealisedAttack
from certssb.console import format_table, plain_statements, statement
from certssb.ensemble import MemberVotes
from certssb.results import certify_split

CERT = OmegaConf.create({"name": "rab", "mode": "soft", "alpha": 0.001, "pb_mode": "auto",
                         "selection_correction": True, "radii": [0.0, 0.25, 0.5],
                         "poison_eta": None, "poison_eps": None, "grid_select": "radius",
                         "memory": {"enabled": False, "order": "index", "order_seed": 0, "shared": False}})


def _split(train_sigmas, poison_eta=None):
    rng = np.random.default_rng(0)
    m, n_members = 30, 1000
    p_top = rng.uniform(0.5, 1.0, m)
    prob_sum = np.stack([p_top, 1 - p_top], axis=1) * n_members
    votes = MemberVotes(prob_sum=prob_sum, votes=np.round(prob_sum).astype(np.int64), n_members=n_members)
    sigmas = rng.uniform(0.2, 0.8, m)
    attack = RealisedAttack([1, 4], [0.3, 0.5], rng.uniform(0.1, 0.4, m))
    cfg = CERT.copy()
    cfg.poison_eta = poison_eta
    res = certify_split("clean", np.zeros((m, 4)), np.zeros(m, dtype=np.int64), np.arange(m), votes, sigmas,
                        train_sigmas, cfg, attack, target=1)
    return res, sigmas, attack


def test_certify_split_uses_the_whole_array_of_certificate_training_sigmas():
    train = np.array([0.9, 0.3, 0.7, 0.6, 0.4, 0.8])
    res, sigmas, attack = _split(train)
    t = res.table
    budget = t["whitened_budget"].to_numpy()
    np.testing.assert_allclose(t["radius_joint"], np.minimum(sigmas, 0.3) * budget, rtol=1e-12)  # min inside
    expected = np.sqrt((attack.test_delta_l2 / sigmas) ** 2 + (0.3 / 0.3) ** 2 + (0.5 / 0.4) ** 2)
    np.testing.assert_allclose(t["attack_whitened"], expected, rtol=1e-12)  # the poisoned samples' own sigmas
    np.testing.assert_array_equal(t["covered_exact"], expected < budget)
    pc = res.curves["poison_count"]
    assert (pc["eta"], pc["eps"]) == (0.5, attack.test_delta_l2.max())
    # counts: the attacker takes the smallest sigmas 0.3, 0.4, 0.6, ... (cost eta^2 / sigma^2 each)
    cost = np.cumsum(0.5 ** 2 / np.sort(train) ** 2)
    slack = budget ** 2 - (pc["eps"] / sigmas) ** 2
    brute = np.array([-1 if s <= 0 else int(np.sum(cost < s)) for s in slack])
    np.testing.assert_array_equal(t["certified_poison_count"], brute)
    assert res.metrics["acr"] == pytest.approx(np.mean(t["radius_joint"] * t["correct"]))
    assert list(res.curves["certified_accuracy"]) == ["joint", "paper"]
    # a smaller eta never certifies fewer samples
    res_small, _, _ = _split(train, poison_eta=0.1)
    assert (res_small.table["certified_poison_count"] >= t["certified_poison_count"]).all()


def _curve(ca_poison, ca_joint, ca_paper):
    return {"radii": [0.0, 0.25, 0.5], "certified_accuracy": {"joint": ca_joint, "paper": ca_paper},
            "poison_count": {"eta": 1.0, "eps": 1.0, "counts": [0, 1, 2, 5, 7], "n_poisoned": 7,
                             "certified_accuracy": {"joint": ca_poison},
                             "certified_accuracy_at_n_poisoned": {"joint": ca_poison[-1]}}}


def test_statement_reads_the_curves():
    text = statement("clean", _curve([0.8, 0.6, 0.4, 0.1, 0.0], [0.9, 0.5, 0.2], [0.9, 0.8, 0.6]))
    assert text.startswith("clean: 40% of test inputs are certified correct against up to 2 poisoned training "
                           "samples of L2 1 each plus a test trigger of L2 1")
    assert "80% against the test trigger alone" in text and "the attack poisoned 7 samples (0%" in text
    assert "50% against any joint change (training and test together) of L2 0.25" in text
    assert "60% against a test-time perturbation alone (evasion) of L2 0.5" in text
    assert text.endswith(".") and ". " not in text  # one sentence
    text = statement("triggered", _curve([0.0] * 5, [0.0] * 3, [0.0] * 3))
    assert text.startswith("triggered: no test input is certified correct against a test trigger of L2 1")
    text = statement("clean", _curve([0.6, 0.1, 0.0, 0.0, 0.0], [0.6, 0.1, 0.0], [0.6, 0.2, 0.0]))
    assert "10% of test inputs are certified correct against up to 1 poisoned training sample " in text


def test_format_table_lists_the_sound_variant_first_and_ends_with_the_sentences():
    curve = _curve([0.8, 0.6, 0.4, 0.1, 0.0], [0.9, 0.5, 0.2], [0.9, 0.8, 0.6])
    split_metrics = {"acr": 0.2, "covered_fraction": {"exact": 0.25, "joint_l2_ball": 0.1}}
    summary = {"method": "cert-ssb", "n_members": 10, "alpha": 0.001,
               "metrics": {"clean_accuracy": 0.9, "asr": 0.1, "attack_joint_l2": 3.0,
                           "clean": split_metrics, "triggered": split_metrics},
               "curves": {"clean": curve, "triggered": curve}}
    lines = format_table(summary).splitlines()
    rows = [line.strip() for line in lines]
    assert rows.index(next(r for r in rows if r.startswith("joint (sound)"))) < rows.index(
        next(r for r in rows if r.startswith("paper (evasion only)")))
    assert any("realised attack covered (exact ellipsoid) 25%" in line for line in lines)
    assert lines[-2:] == list(plain_statements(summary).values())


def test_logger_flattens_the_poison_curves_and_statements():
    from certssb.logger.flatten import poison_rows, summary_scalars

    curve = _curve([0.8, 0.6, 0.4, 0.1, 0.0], [0.9, 0.5, 0.2], [0.9, 0.8, 0.6])
    summary = {"metrics": {"clean": {"acr": 0.2}}, "curves": {"clean": curve},
               "certified_statement": {"clean": statement("clean", curve)}}
    scalars = summary_scalars(summary)
    assert scalars["metrics/clean/acr"] == 0.2
    assert scalars["ca_poison/clean/joint/k2"] == 0.4 and scalars["poison_size/clean/eta"] == 1.0
    assert scalars["statement/clean"].startswith("clean: 40%")
    assert poison_rows(summary)[:2] == [["clean", "joint", 0, 0.8], ["clean", "joint", 1, 0.6]]


def test_statement_names_a_covered_radius_even_below_the_half_rule():
    text = statement("clean", _curve([0.0] * 5, [0.8, 0.2, 0.0], [0.8, 0.6, 0.1]))
    assert "20% against any joint change (training and test together) of L2 0.25" in text
    assert "60% against a test-time perturbation alone (evasion) of L2 0.25" in text
