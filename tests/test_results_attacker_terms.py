"""certify_split with the certificate training sigmas, and the plain sentences of the console."""

from __future__ import annotations

import numpy as np
import pytest

from certssb.certifier import RealisedAttack
from certssb.config import load_option
from certssb.console import format_table, plain_statements, statement
from certssb.ensemble import MemberVotes
from certssb.results import certify_split
from certssb.testsets import TestSet


def _split(train_sigmas, poison_eta=None, relabelled=(), scale=1.0):
    rng = np.random.default_rng(0)
    m, n_members = 30, 1000
    p_top = rng.uniform(0.5, 1.0, m)
    prob_sum = np.stack([p_top, 1 - p_top], axis=1) * n_members
    votes = MemberVotes(prob_sum=prob_sum, votes=np.round(prob_sum).astype(np.int64), n_members=n_members)
    sigmas = rng.uniform(0.2, 0.8, m)
    attack = RealisedAttack([1, 4], [0.3 * scale, 0.5 * scale], rng.uniform(0.1, 0.4, m) * scale, relabelled)
    cfg = load_option("certifier", "rab", radii=[0.0, 0.25, 0.5], poison_eta=poison_eta)
    ts = TestSet("clean", np.zeros((m, 4)), np.zeros(m, dtype=np.int64), np.arange(m), sigmas)
    res = certify_split(ts, votes, train_sigmas, cfg, attack, target=1)
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


def test_a_relabelling_attack_is_never_reported_as_covered():
    """The same certificates, once with the poisoned samples' labels kept and once relabelled: the
    ellipsoid's reading of the trigger features is the same, the attack as run is covered only
    where the labels were kept (docs/METHOD.md section 8.1)."""
    train = np.array([0.9, 0.3, 0.7, 0.6, 0.4, 0.8])
    kept, _, _ = _split(train, scale=0.1)
    relabelled, _, _ = _split(train, relabelled=[1, 4], scale=0.1)
    features = kept.table["trigger_features_covered"].to_numpy()
    assert features.any() and np.array_equal(features, relabelled.table["trigger_features_covered"])
    np.testing.assert_array_equal(kept.table["covered_exact"], features)
    assert not relabelled.table["covered_exact"].any() and not relabelled.table["realised_attack_certified"].any()
    np.testing.assert_array_equal(kept.table["realised_attack_certified"], features & kept.table["correct"])
    cov = relabelled.metrics["covered_fraction"]
    assert cov["exact"] == 0.0 and cov["joint_l2_ball"] == 0.0
    assert cov["trigger_features_only"]["exact"] == pytest.approx(features.mean()) and features.mean() > 0
    assert relabelled.metrics["realised_attack_certified"] == 0.0 and kept.metrics["realised_attack_certified"] > 0
    # one axis: a non-abstained Gaussian certificate certifies no arbitrary change (0), an abstention -1
    np.testing.assert_array_equal(kept.table["certified_any_count"], np.where(kept.table["abstain"], -1, 0))
    summary = {"metrics": {"clean": {**relabelled.metrics}}, "curves": {"clean": relabelled.curves},
               "attack": {"n_relabelled": 2}}
    sentence = plain_statements(summary)["clean"]
    assert "not covered: it relabelled 2 training samples, outside this certificate" in sentence
    assert "covered for" not in sentence and "provably failed" not in sentence


def _curve(ca_poison, ca_joint, ca_paper):
    return {"radii": [0.0, 0.25, 0.5], "certified_accuracy": {"joint": ca_joint, "paper": ca_paper},
            "poison_count": {"eta": 1.0, "eps": 1.0, "counts": [0, 1, 2, 5, 7], "n_poisoned": 7,
                             "certified_accuracy": {"joint": ca_poison},
                             "certified_accuracy_at_n_poisoned": {"joint": ca_poison[-1]}}}


def test_statement_reads_the_curves():
    text = statement("clean", _curve([0.8, 0.6, 0.4, 0.1, 0.0], [0.9, 0.5, 0.2], [0.9, 0.8, 0.6]))
    assert text.startswith("clean: 50% of test inputs are certified correct against any joint change of L2 0.25 "
                           "(training features and test input together, labels unchanged)")
    assert ("; 40% against up to 2 poisoned training samples of L2 1 each (labels unchanged) plus a test trigger "
            "of L2 1") in text
    assert "60% against a test-time perturbation alone (evasion) of L2 0.5" in text
    assert text.endswith(".") and ". " not in text  # one sentence
    text = statement("triggered", _curve([0.0] * 5, [0.0] * 3, [0.0] * 3))
    assert text == "triggered: no test input is certified correct at any positive L2 radius."
    text = statement("clean", _curve([0.6, 0.1, 0.0, 0.0, 0.0], [0.6, 0.1, 0.0], [0.6, 0.2, 0.0]))
    assert "10% against up to 1 poisoned training sample of L2 1 each (labels unchanged)" in text
    kept = statement("triggered", _curve([0.6] * 5, [0.6, 0.5, 0.0], [0.6] * 3),
                     {"attack_changed_samples": 7, "realised_attack_certified": 0.25, "relabelled": 0})
    assert "on 25% of the triggered inputs the backdoor provably failed" in kept


def test_count_statements_name_the_attack_as_run():
    curve = {"any_count": {"counts": [0, 1, 2, 5, 10, 20], "certified_accuracy": [0.9, 0.9, 0.85, 0.8, 0.6, 0.1]}}
    clean = statement("clean", curve, {"attack_changed_samples": 7, "realised_attack_certified": 0.7})
    assert clean == ("clean: 70% of test inputs are certified correct against any 7 changed training samples "
                     "(features and labels), as many as the attack changed; 60% against any 10.")
    trig = statement("triggered", curve, {"attack_changed_samples": 7, "realised_attack_certified": 0.3})
    assert trig.startswith("triggered: on 30% of the triggered test inputs the backdoor provably failed: correct "
                           "and certified against any 7 changed training samples (labels included)")


def test_format_table_opens_with_the_verdict_and_ends_with_the_sentences():
    curve = _curve([0.8, 0.6, 0.4, 0.1, 0.0], [0.9, 0.5, 0.2], [0.9, 0.5, 0.2])
    split_metrics = {"acr": 0.2, "accuracy": 0.9, "abstain_rate": 0.1, "max_radius": 0.4,
                     "realised_attack_certified": 0.0, "attack_changed_samples": 7}
    summary = {"method": "cert-ssb", "family": "gaussian", "n_members": 100, "alpha": 0.001,
               "certifier": {"name": "cohen", "mode": "hard", "alpha_per_bound": 0.0005},
               "attack": {"name": "onepixel", "n_poisoned": 7, "n_relabelled": 7, "relabels": True},
               "dataset": {"num_classes": 2}, "sigma_0": 0.25,
               "metrics": {"clean_accuracy": 0.9, "asr": 0.1, "attack_joint_l2_median": 3.0,
                           "clean": split_metrics, "triggered": split_metrics},
               "curves": {"clean": curve, "triggered": curve}}
    lines = format_table(summary).splitlines()
    assert lines[0].startswith("ran: cert-ssb (Gaussian family: an L2 radius of feature changes, labels held")
    assert lines[1].startswith("smoothed classifier: clean accuracy 0.900, ASR 0.100, abstain 10%")
    assert lines[3].startswith("attack as run (changed 7 training samples): certified for clean 0%, triggered 0%: "
                               "it relabelled 7 training samples, outside the Gaussian certificate")
    assert "its joint L2 size 3 exceeds the largest certified radius 0.4" in lines[3]
    # all 100 votes for one class: pA_lower = 0.0005^(1/100), radius cap Phi^-1(pA_lower) x sigma
    assert lines[4].startswith("warning: N=100 members at alpha 0.001 certify at most 1.45 x sigma (0.363 at "
                               "sigma 0.25); the attack's joint L2 3 would need sigma >= 2.07 at this N, or N beyond "
                               "reach (> 1e15) at this sigma")
    rows = [line.strip() for line in lines]
    assert rows.index(next(r for r in rows if r.startswith("joint (sound)"))) < rows.index(
        next(r for r in rows if r.startswith("paper (evasion only)")))
    assert "paper (evasion only)  same as joint (sound)" in rows  # identical curves are folded
    assert lines[-2:] == list(plain_statements(summary).values())


def test_logger_flattens_the_poison_curves_and_statements():
    from certssb.logger.flatten import poison_rows, summary_scalars

    curve = _curve([0.8, 0.6, 0.4, 0.1, 0.0], [0.9, 0.5, 0.2], [0.9, 0.8, 0.6])
    summary = {"metrics": {"clean": {"acr": 0.2}}, "curves": {"clean": curve},
               "certified_statement": {"clean": statement("clean", curve)}}
    scalars = summary_scalars(summary)
    assert scalars["metrics/clean/acr"] == 0.2
    assert scalars["ca_poison_labels_unchanged/clean/joint/k2"] == 0.4 and scalars["poison_size/clean/eta"] == 1.0
    assert scalars["statement/clean"].startswith("clean: 50%")
    assert poison_rows(summary)[:2] == [["clean", "joint", 0, 0.8], ["clean", "joint", 1, 0.6]]


def test_statement_names_a_covered_radius_even_below_the_half_rule():
    text = statement("clean", _curve([0.0] * 5, [0.8, 0.2, 0.0], [0.8, 0.6, 0.1]))
    assert "20% of test inputs are certified correct against any joint change of L2 0.25" in text
    assert "60% against a test-time perturbation alone (evasion) of L2 0.25" in text


def test_the_members_a_radius_needs_match_the_clopper_pearson_cap():
    """N from the closed form: all N votes for one class give pA_lower = alpha'^(1/N); the radius
    cap is Phi^-1(pA_lower) x sigma. The N the verdict names for 2 x sigma must reach it, N - 1 not."""
    from scipy import stats

    from certssb.verdict import _members_needed

    text = _members_needed({"certifier": {"alpha_per_bound": 0.0005}}, 2.0)
    n = float(text.lstrip("~"))
    cap = lambda members: stats.norm.ppf(0.0005 ** (1 / members))  # noqa: E731
    assert 320 < n < 340 and cap(int(n) + 1) >= 2.0 > cap(int(n) - 1)
