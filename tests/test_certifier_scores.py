"""certify_scores: selection, alpha splitting, gap, and end-to-end false-certificate rates."""

import math

import numpy as np
import pytest
from scipy import stats

from certssb.certifier.bounds import clopper_pearson_lower, clopper_pearson_upper, hoeffding_lower
from certssb.certifier.radius import radius_variants
from certssb.certifier.scores import certify_scores, expected_gap, per_bound_alpha
from certssb.config import load_option
from certssb.errors import CertSSBError, ConfigError, ScoreInputError

TRIALS = 20000


def _tolerance(alpha, trials):
    return 5.0 * math.sqrt(alpha * (1 - alpha) / trials) + 1.0 / trials


def _false_certificate_rate(p, n, alpha, *, mode="hard", pb_mode="auto", correction=True, seed=0, trials=TRIALS):
    """Simulate n one-hot members per trial with true class probabilities p; return the rate
    at which a bound is wrong for the SELECTED classes: pA_lower > p[A] or pB_upper < max_{c!=A} p[c]."""
    p = np.asarray(p, dtype=float)
    votes = np.random.default_rng(seed).multinomial(n, p, size=trials)
    b = certify_scores(votes.astype(float), votes, n, alpha=alpha, mode=mode, pb_mode=pb_mode,
                       selection_correction=correction)
    true_a = p[b.prediction]
    masked = np.broadcast_to(p, votes.shape).copy()
    masked[np.arange(trials), b.prediction] = -np.inf
    true_b = masked.max(axis=1)
    wrong = (b.p_a_lower > true_a) | (b.p_b_upper < true_b)
    return float(np.mean(wrong)), b


# ------------------------------------------------ end-to-end soundness (the reason for the correction)


@pytest.mark.parametrize("mode", ["hard", "soft"])
@pytest.mark.parametrize(
    "p,pb_mode",
    [
        ((0.5, 0.5), "auto"),  # adversarial tie, binary -> complement
        ((0.7, 0.3), "auto"),
        ((0.5, 0.5), "bonferroni"),
        ((0.45, 0.45, 0.10), "auto"),  # 3 classes -> bonferroni
        ((1 / 3, 1 / 3, 1 / 3), "auto"),
        ((1 / 3, 1 / 3, 1 / 3), "complement"),
    ],
)
def test_false_certificate_rate_at_most_alpha(p, pb_mode, mode):
    alpha = 0.05
    rate, _ = _false_certificate_rate(p, 1000, alpha, mode=mode, pb_mode=pb_mode, seed=len(p) * 17)
    assert rate <= alpha + _tolerance(alpha, TRIALS)


def test_false_certificate_rate_small_n_hard():
    # few members: Clopper-Pearson is discrete, still sound
    alpha = 0.1
    rate, _ = _false_certificate_rate((0.5, 0.5), 25, alpha, seed=3)
    assert rate <= alpha + _tolerance(alpha, TRIALS)


def test_without_selection_correction_tie_exceeds_alpha():
    """Documenting why the correction exists: in the tie p = (0.5, 0.5) each class's lower
    bound at alpha exceeds 0.5 with probability ~alpha, and the larger class is always the one
    selected, so uncorrected bounds fail ~2 alpha of the time."""
    alpha = 0.2
    rate_off, b_off = _false_certificate_rate((0.5, 0.5), 1000, alpha, correction=False, seed=11)
    rate_on, b_on = _false_certificate_rate((0.5, 0.5), 1000, alpha, correction=True, seed=11)
    tol = _tolerance(alpha, TRIALS)
    assert b_off.alpha_per_bound == alpha and b_on.alpha_per_bound == alpha / 2
    assert rate_off > alpha + tol  # empirically ~0.38
    assert rate_on <= alpha + tol
    # every uncorrected non-abstaining certificate in a tie is a false one
    assert np.mean(~b_off.abstain) > alpha + tol


def test_without_selection_correction_three_class_tie_exceeds_alpha():
    alpha = 0.2
    rate_off, _ = _false_certificate_rate((1 / 3,) * 3, 1000, alpha, correction=False, seed=5)
    assert rate_off > alpha + _tolerance(alpha, TRIALS)


# ------------------------------------------------ alpha splitting


def test_per_bound_alpha_table():
    assert per_bound_alpha(0.001, 2, "complement", True) == pytest.approx(0.0005)
    assert per_bound_alpha(0.001, 2, "bonferroni", True) == pytest.approx(0.00025)
    assert per_bound_alpha(0.03, 3, "bonferroni", True) == pytest.approx(0.005)
    assert per_bound_alpha(0.03, 3, "complement", True) == pytest.approx(0.01)
    assert per_bound_alpha(0.001, 10, "complement", False) == pytest.approx(0.001)
    assert per_bound_alpha(0.001, 10, "bonferroni", False) == pytest.approx(0.0005)


def test_auto_resolves_by_number_of_classes():
    v2 = np.array([[800, 200]])
    v3 = np.array([[800, 150, 50]])
    assert certify_scores(None, v2, 1000, alpha=0.01, mode="hard").pb_mode == "complement"
    assert certify_scores(None, v3, 1000, alpha=0.01, mode="hard").pb_mode == "bonferroni"
    assert certify_scores(None, v3, 1000, alpha=0.01, mode="hard").alpha_per_bound == pytest.approx(0.01 / 6)


# ------------------------------------------------ bounds chosen per row


def test_hard_complement_and_bonferroni_values_match_direct_bounds():
    votes = np.array([[700, 250, 50], [10, 20, 970], [400, 400, 200]])
    n, alpha = 1000, 0.01
    comp = certify_scores(None, votes, n, alpha=alpha, mode="hard", pb_mode="complement")
    bonf = certify_scores(None, votes, n, alpha=alpha, mode="hard", pb_mode="bonferroni")
    np.testing.assert_array_equal(comp.prediction, [0, 2, 0])  # tie 400/400 -> lowest index
    np.testing.assert_array_equal(comp.runner_up, [1, 1, 1])
    a_c, a_b = alpha / 3, alpha / 6
    for i, (a, bb) in enumerate([(0, 1), (2, 1), (0, 1)]):
        assert comp.p_a_lower[i] == pytest.approx(stats.beta.ppf(a_c, votes[i, a], n - votes[i, a] + 1), rel=1e-12)
        assert comp.p_b_upper[i] == pytest.approx(1 - comp.p_a_lower[i], rel=1e-12)
        assert bonf.p_a_lower[i] == pytest.approx(float(clopper_pearson_lower(votes[i, a], n, a_b)), rel=1e-12)
        others = [c for c in range(3) if c != a]
        want = max(float(clopper_pearson_upper(votes[i, c], n, a_b)) for c in others)
        assert bonf.p_b_upper[i] == pytest.approx(want, rel=1e-12)
    assert comp.abstain[2] and bonf.abstain[2]
    for b in (comp, bonf):
        ok = ~b.abstain
        want = stats.norm.ppf(b.p_a_lower[ok]) - stats.norm.ppf(b.p_b_upper[ok])
        np.testing.assert_allclose(b.gap[ok], want, rtol=1e-12)
        assert np.all(b.gap[b.abstain] == 0.0)


def test_soft_uses_hoeffding_with_actual_n():
    probs = np.array([[0.8, 0.2], [0.8, 0.2]])
    alpha = 0.001
    for n in (200, 1000):
        b = certify_scores(probs * n, None, n, alpha=alpha, mode="soft")
        margin = math.sqrt(math.log(2 / alpha) / (2 * n))  # alpha / C with C = 2
        np.testing.assert_allclose(b.p_a_lower, 0.8 - margin, rtol=1e-12)
        np.testing.assert_allclose(b.p_b_upper, 0.2 + margin, rtol=1e-12)
        np.testing.assert_allclose(b.p_a_mean, 0.8)
        np.testing.assert_allclose(b.p_b_mean, 0.2)
    # per-row n
    b = certify_scores(probs * np.array([[200], [1000]]), None, np.array([200, 1000]), alpha=alpha)
    assert b.p_a_lower[0] == pytest.approx(0.8 - math.sqrt(math.log(2 / alpha) / 400))
    assert b.p_a_lower[1] == pytest.approx(0.8 - math.sqrt(math.log(2 / alpha) / 2000))


def test_soft_and_hard_predictions_follow_their_own_scores():
    prob_sum = np.array([[40.0, 60.0]])  # soft says class 1
    votes = np.array([[55, 45]])  # hard says class 0
    assert certify_scores(prob_sum, votes, 100, alpha=0.1, mode="soft").prediction[0] == 1
    assert certify_scores(prob_sum, votes, 100, alpha=0.1, mode="hard").prediction[0] == 0


def test_hand_computed_binary_radius():
    """Soft, C = 2, complement: pA_lower = Phi(1) -> G = 2 -> R = sigma * G / 2 = 0.5 at sigma 0.5."""
    n, alpha = 1000, 0.001
    margin = math.sqrt(math.log(1 / (alpha / 2)) / (2 * n))
    pa = stats.norm.cdf(1.0) + margin
    b = certify_scores(np.array([[pa * n, (1 - pa) * n]]), None, n, alpha=alpha)
    assert b.p_a_lower[0] == pytest.approx(stats.norm.cdf(1.0), abs=1e-12)
    assert b.gap[0] == pytest.approx(2.0, abs=1e-9)
    r = radius_variants(b.gap, 0.5, 0.5)
    assert r["paper"][0] == pytest.approx(0.5, abs=1e-9)
    assert r["joint"][0] == pytest.approx(0.5, abs=1e-9)
    # binary complement: sigma * G / 2 == sigma * Phi^-1(pA_lower)
    assert r["paper"][0] == pytest.approx(0.5 * stats.norm.ppf(b.p_a_lower[0]), rel=1e-12)


def test_abstains_on_even_votes():
    for pb_mode in ("complement", "bonferroni"):
        b = certify_scores(None, np.array([[500, 500]]), 1000, alpha=0.001, mode="hard", pb_mode=pb_mode)
        assert b.abstain[0] and b.gap[0] == 0.0 and b.prediction[0] == 0
        b = certify_scores(np.array([[500.0, 500.0]]), None, 1000, alpha=0.001, mode="soft", pb_mode=pb_mode)
        assert b.abstain[0] and b.gap[0] == 0.0


@pytest.mark.parametrize("mode", ["soft", "hard"])
@pytest.mark.parametrize("pb_mode", ["complement", "bonferroni"])
@pytest.mark.parametrize("n", [1, 2, 10, 100000])
def test_gap_always_finite(mode, pb_mode, n):
    votes = np.array([[n, 0, 0], [0, n, 0], [0, 0, n], [n, 0, 0]])
    b = certify_scores(votes.astype(float), votes, n, alpha=1e-12 if n > 1 else 0.9, mode=mode, pb_mode=pb_mode)
    assert np.all(np.isfinite(b.gap)) and np.all(b.gap >= 0)
    assert np.all(b.p_a_lower < 1.0) and np.all(b.p_b_upper > 0.0)
    assert np.all(b.gap[b.abstain] == 0) and np.all(b.gap[~b.abstain] > 0)


def test_unanimous_votes_certify():
    b = certify_scores(None, np.array([[0, 1000]]), 1000, alpha=0.001, mode="hard")
    assert not b.abstain[0] and b.prediction[0] == 1
    assert b.p_a_lower[0] == pytest.approx((0.0005) ** (1 / 1000), rel=1e-12)


# ------------------------------------------------ expected gap (diagnostic)


def test_expected_gap():
    g = expected_gap(np.array([stats.norm.cdf(1.0), 1.0, 0.5, 0.3]), np.array([stats.norm.cdf(-1.0), 0.0, 0.5, 0.7]))
    assert g[0] == pytest.approx(2.0, rel=1e-12)
    assert g[1] == pytest.approx(2 * stats.norm.ppf(1 - 1e-6), rel=1e-12)
    assert g[2] == 0.0 and g[3] == 0.0
    assert np.all(np.isfinite(g))
    with pytest.raises(ConfigError):
        expected_gap(0.9, 0.1, clip=0.0)


# ------------------------------------------------ validation and config


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(prob_sum=np.ones((2, 2)), votes=None, n=2, alpha=0.01, mode="vote"),
        dict(prob_sum=np.ones((2, 2)), votes=None, n=2, alpha=0.01, pb_mode="union"),
        dict(prob_sum=np.ones((2, 2)), votes=None, n=2, alpha=0.0),
        dict(prob_sum=np.ones((2, 2)), votes=None, n=0, alpha=0.01),
        dict(prob_sum=np.ones(4), votes=None, n=2, alpha=0.01),
        dict(prob_sum=np.ones((2, 1)), votes=None, n=2, alpha=0.01),
        dict(prob_sum=np.full((2, 2), 5.0), votes=None, n=2, alpha=0.01),
        dict(prob_sum=np.array([[np.nan, 1.0]]), votes=None, n=2, alpha=0.01),
        dict(prob_sum=None, votes=None, n=2, alpha=0.01),
        dict(prob_sum=None, votes=np.array([[2, 1]]), n=2, alpha=0.01, mode="hard"),
        dict(prob_sum=None, votes=np.array([[3, 0]]), n=2, alpha=0.01, mode="hard"),
        dict(prob_sum=None, votes=np.array([[0.5, 0.5]]), n=1, alpha=0.01, mode="hard"),
        dict(prob_sum=np.ones((2, 2)), votes=None, n=np.array([2, 2, 2]), alpha=0.01),
    ],
)
def test_rejects_bad_input(kwargs):
    prob_sum, votes, n = kwargs.pop("prob_sum"), kwargs.pop("votes"), kwargs.pop("n")
    with pytest.raises(CertSSBError) as err:
        certify_scores(prob_sum, votes, n, **kwargs)
    assert "\n" not in str(err.value)


def test_the_certifier_settings_bound_with_their_own_values():
    votes = np.array([[900, 100]])
    cohen = load_option("certifier", "cohen", pb_mode="bonferroni", selection_correction=False)
    b = cohen.bounds(None, votes, 1000)
    assert b.mode == "hard" and b.pb_mode == "bonferroni" and b.alpha_per_bound == pytest.approx(0.0005)
    b2 = load_option("certifier", "rab", selection_correction=False).bounds(votes.astype(float), None, 1000)
    assert b2.mode == "soft" and b2.alpha_per_bound == pytest.approx(0.001)  # two classes: complement, alpha
    np.testing.assert_allclose(b2.p_a_lower, 0.9 - np.sqrt(np.log(1 / 0.001) / 2000))  # Hoeffding by hand


# ------------------------------------------------ the certification boundary: malformed scores


@pytest.mark.parametrize(
    "prob_sum, votes, n, match",
    [
        (np.array([[6.0, 5.0]]), None, 10, "sum to at most n"),  # rows above n, entries below it
        (np.array([[0.9, 0.1], [-0.5, 1.5]]), None, 1, ">= 0"),
        (np.array([[0.5, np.nan]]), None, 1, "NaN"),
        (np.array([[0.5, 0.5]]), np.array([[1, 0, 0]]), 1, "same shape"),
        (np.array([[0.5, 0.5], [0.5, 0.5]]), None, np.array([1, 1, 1]), "shape"),
    ],
)
def test_malformed_soft_scores_are_rejected_in_one_line(prob_sum, votes, n, match):
    for pb_mode in ("complement", "bonferroni"):
        with pytest.raises(ScoreInputError, match=match) as err:
            certify_scores(prob_sum, votes, n, alpha=0.01, pb_mode=pb_mode)
        assert "\n" not in str(err.value) and isinstance(err.value, ValueError)


def test_negative_and_oversubscribed_votes_are_rejected():
    with pytest.raises(ScoreInputError, match=">= 0"):
        certify_scores(None, np.array([[-1, 3]]), 2, alpha=0.01, mode="hard")
    with pytest.raises(ScoreInputError, match="row 1 sums to 3"):
        certify_scores(None, np.array([[1, 1], [2, 1]]), 2, alpha=0.01, mode="hard")


def test_sigmoid_style_scores_no_longer_certify_in_complement_mode():
    """Per-class sigmoids (0.95, 0.9 for every member) do not sum to 1. The complement bound
    pB <= 1 - pA_lower would give pB_upper ~ 0.06 although the runner-up's mean score is 0.9:
    a false certificate. An independent check of what the complement formula would have said,
    then the rejection."""
    n = 1000
    prob_sum = np.array([[0.95 * n, 0.90 * n]])
    a = per_bound_alpha(0.001, 2, "complement", True)
    would_be_pb_upper = 1.0 - hoeffding_lower(np.array([0.95]), n, a)[0]
    assert would_be_pb_upper < 0.9  # the runner-up's own mean exceeds the would-be upper bound
    with pytest.raises(ScoreInputError, match="sigmoid"):
        certify_scores(prob_sum, None, n, alpha=0.001, pb_mode="complement")


def test_softmax_sums_with_rounding_are_accepted():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 200, 3))
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    prob_sum = p.sum(1).astype(np.float32).astype(np.float64)  # float32 rounding of the sums
    b = certify_scores(prob_sum, None, 200, alpha=0.001)
    assert np.all(np.isfinite(b.gap))
    row = prob_sum[:1] * (1 + 0.5e-6)  # within the stated slack
    certify_scores(row, None, 200, alpha=0.001)
