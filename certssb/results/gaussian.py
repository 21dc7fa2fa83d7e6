"""The Gaussian family's certificates of one test set (RAB, Cert-SSB and the sound designs), step by
step: bounds and radius variants, the exact ellipsoid in the attacker's terms, curves and metrics,
the storage-update memory, and the readings of the attack as run.

What these certificates cover (docs/METHOD.md section 8.1): feature changes with the labels held
as they are. An attack that relabelled training samples is never reported as covered; what the
ellipsoid still says of it (the trigger features alone, labels as poisoned) is reported under its
own name, ``trigger_features_covered`` / ``covered_fraction.trigger_features_only``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from certssb.certifier import (
    GridVotes,
    RealisedAttack,
    certified_accuracy_curve,
    certified_poison_count,
    covered_fraction,
    expected_gap,
    poison_certified_accuracy,
    poison_count_grid,
    radius_variants,
    resolve_poison_sizes,
    summary_metrics,
)

from .memory import SharedMemories, run_memories
from .split import SplitResult, add_attack_as_run, coverage_entries, median_count

# L2 radius variants drawn on the radius axis (``budget`` is whitened, never drawn there).
L2_VARIANTS = ("joint", "paper")
# Order of the curves everywhere: the sound variant first; ``paper`` is a test-time certificate.
VARIANT_ORDER = ("joint", "joint_memory", "paper", "paper_memory")


class _ByTrainSigma:
    """Evaluates ``fn(mask, certificate_train_sigmas)`` per group of inputs that share a training
    sigma (``grid_ensembles``: the ensemble each input was certified with), and scatters the
    parts back; with one set of training sigmas for every input, a single call over all inputs."""

    def __init__(self, per_input, train_sigmas: np.ndarray) -> None:
        self.per_input = None if per_input is None else np.asarray(per_input, dtype=np.float64)
        self.train_sigmas = train_sigmas

    def __call__(self, fn) -> np.ndarray:
        if self.per_input is None or self.per_input.size == 0:
            n = 0 if self.per_input is None else self.per_input.size
            return np.asarray(fn(np.ones(n, dtype=bool) if self.per_input is not None else slice(None),
                                 self.train_sigmas))
        out = None
        for value in np.unique(self.per_input):
            mask = self.per_input == value
            part = np.asarray(fn(mask, np.full(self.train_sigmas.shape, value)))
            if out is None:
                out = np.empty(self.per_input.shape, dtype=part.dtype)
            out[mask] = part
        return out


class _Certified:
    """One set's certificates before the memory: bounds, the test sigmas they were computed at,
    radius variants, and the ellipsoid's readings of the realised attack."""

    def __init__(self, votes, sigmas, train_sigmas: np.ndarray, cert, attack: RealisedAttack, indices):
        self.sizes = resolve_poison_sizes(attack, cert.poison_eta, cert.poison_eps)
        per_input_train = None  # grid_ensembles: the training sigma of the ensemble each input was certified with
        if isinstance(votes, GridVotes):
            selected = cert.grid_bounds(votes, poison=(self.sizes.eps, self.sizes.eta, train_sigmas.size))
            self.bounds, self.sigmas = selected.bounds, selected.sigma
            if votes.candidate_train is not None:
                per_input_train = selected.train_sigma
        else:
            self.bounds, self.sigmas = cert.bounds(votes.prob_sum, votes.votes, votes.n_members), sigmas
        self.by_train = _ByTrainSigma(per_input_train, train_sigmas)
        self.radii = radius_variants(self.bounds.gap, self.sigmas, train_sigmas)
        if per_input_train is not None:
            self.radii["joint"] = np.minimum(self.sigmas, per_input_train) * self.bounds.gap / 2.0
        sig = self.sigmas
        self.whitened = self.by_train(lambda m, ts: attack.whitened(indices[m], sig[m], ts))
        budget = self.radii["budget"]
        eps, eta = self.sizes.eps, self.sizes.eta
        self.poison_count = self.by_train(lambda m, ts: certified_poison_count(budget[m], sig[m], ts, eps, eta))


def _table(name, labels, indices, c: _Certified, attack: RealisedAttack) -> pd.DataFrame:
    """The per-input table before the memory (the columns of ``certificates.csv``, in order)."""
    b, r = c.bounds, c.radii
    return pd.DataFrame({
        "split": name,
        "index": indices,
        "label": labels,
        "prediction": b.prediction,
        "sigma": c.sigmas,
        "sigma_train_certified": c.by_train(lambda m, ts: np.full(len(labels), ts.min())[m]),  # what `joint` uses
        "p_a_lower": b.p_a_lower,
        "p_b_upper": b.p_b_upper,
        "p_a_mean": b.p_a_mean,
        "abstain": b.abstain,
        "radius_joint": r["joint"],
        "radius_paper": r["paper"],
        "whitened_budget": r["budget"],
        "radius_expected_diagnostic": c.sigmas * expected_gap(b.p_a_mean, b.p_b_mean) / 2.0,
        "correct": b.prediction == labels,
        "attack_joint_l2": attack.joint_l2(indices),
        "attack_whitened": c.whitened,
        "covered_exact": (c.whitened < r["budget"]) & (not attack.relabels),  # the attack as run
        "certified_poison_count": c.poison_count,  # labels unchanged
    })


def _curves_and_metrics(name, table, c: _Certified, cert, attack: RealisedAttack, n_train: int, target):
    """Certified-accuracy curves (radius, poisoned samples with labels unchanged) and metrics."""
    correct = table["correct"].to_numpy()
    counts = poison_count_grid(n_train)
    n_p = attack.poisoned_index.size
    radii = extended_radii(cert.radii, max(float(np.max(c.radii[v] * correct, initial=0.0)) for v in L2_VARIANTS))
    curves = {"radii": radii, "certified_accuracy": {}, "poison_count": {
        **c.sizes.as_dict(), "labels": "unchanged", "counts": counts,
        "certified_accuracy": {"joint": poison_certified_accuracy(correct, c.poison_count, counts).tolist()},
        "n_poisoned": int(n_p),
        "certified_accuracy_at_n_poisoned": {
            "joint": float(poison_certified_accuracy(correct, c.poison_count, [n_p])[0])}}}
    acr = {}
    for variant in L2_VARIANTS:
        curves["certified_accuracy"][variant] = certified_accuracy_curve(correct, c.radii[variant],
                                                                         curves["radii"]).tolist()
        acr[variant] = float(np.mean(c.radii[variant] * correct))
    joint_l2 = table["attack_joint_l2"].to_numpy()
    features = c.whitened < c.radii["budget"]
    metrics = summary_metrics(correct, c.radii["joint"], c.bounds.abstain)
    metrics["acr_by_variant"] = acr
    metrics["whitened_budget_mean"] = float(np.mean(c.radii["budget"] * correct))
    metrics["covered_fraction"] = coverage_entries(attack, features, covered_fraction(c.radii["joint"], joint_l2))
    metrics["poison_count_median"] = median_count(correct, c.poison_count)
    if name == "triggered":
        metrics["asr"] = float(np.mean(table["prediction"].to_numpy() == target)) if len(table) else None
    return curves, metrics


def extended_radii(grid, largest: float) -> list[float]:
    """The certifier's radius grid, continued in its last step beyond its end until it passes the
    ``largest`` certified radius of a correct input, so every curve reaches 0 on it."""
    radii = [float(r) for r in grid]
    step = radii[-1] - radii[-2] if len(radii) > 1 else (radii[-1] or 0.1)
    while radii[-1] <= largest and len(radii) < 4 * len(grid) + 8:
        radii.append(round(radii[-1] + step, 10))
    return radii


def certify_split(ts, votes, certificate_train_sigmas, cert, attack: RealisedAttack, target,
                  shared: SharedMemories | None = None, copy_memory_from=None) -> SplitResult:
    """Bounds, radius variants, the optional storage-update memory, metrics and curves of one set.

    ``ts``: the test set (:class:`certssb.testsets.TestSet`: name, inputs, labels, indices, test
    sigmas; the inputs are read by the storage-update memory only). ``certificate_train_sigmas``
    [n_train]: what the certificate may assume per training sample (``joint`` uses their minimum,
    the exact ellipsoid every poisoned sample's own). With grid votes the test sigma of each input
    is chosen here (``cert.grid_bounds``): it is the table's ``sigma`` column, and
    ``SplitResult.alpha_per_bound`` is the alpha the bounds used. ``shared`` / ``copy_memory_from``:
    see :func:`certssb.results.memory.run_memories`.
    """
    name, x = ts.name, ts.x
    labels = np.asarray(ts.labels, dtype=np.int64)
    indices = np.asarray(ts.indices, dtype=np.int64)
    sigmas = np.asarray(ts.sigmas, dtype=np.float64)
    train_sigmas = np.asarray(certificate_train_sigmas, dtype=np.float64).reshape(-1)
    c = _Certified(votes, sigmas, train_sigmas, cert, attack, indices)
    table = _table(name, labels, indices, c, attack)
    curves, metrics = _curves_and_metrics(name, table, c, cert, attack, train_sigmas.size, target)
    result = SplitResult(name, table, metrics, curves, {}, c.bounds.alpha_per_bound)
    features_memory = None
    if cert.memory.enabled:
        features_memory = run_memories(result, x, c, cert, attack, target, shared, copy_memory_from)
    order = [k for k in VARIANT_ORDER if k in curves["certified_accuracy"]]
    curves["certified_accuracy"] = {k: curves["certified_accuracy"][k] for k in order}
    metrics["acr_by_variant"] = {k: metrics["acr_by_variant"][k] for k in order}
    _attack_as_run(result, c, attack, features_memory)
    return result


def _attack_as_run(result: SplitResult, c: _Certified, attack: RealisedAttack, features_memory) -> None:
    """The labels' reading and the one axis: what the ellipsoid says of the trigger features alone
    (``trigger_features_covered``, with the memory's final certificate where it ran),
    ``certified_any_count`` (0 where certified at all, -1 where the bounds abstained) and
    ``realised_attack_certified`` (correct and the attack as run covered, by the deployed
    classifier: with the memory when it ran)."""
    table = result.table
    table["trigger_features_covered"] = c.whitened < c.radii["budget"]
    covered, deployed, radius = table["covered_exact"].to_numpy(), "correct", "radius_joint"
    if features_memory is not None:
        table["trigger_features_covered_joint_memory"] = features_memory
        covered, deployed = table["covered_exact_joint_memory"].to_numpy(), "correct_joint_memory"
        radius = "radius_joint_memory"
    correct = table[deployed].to_numpy()
    result.metrics["max_radius"] = float(np.max(table[radius].to_numpy() * correct)) if len(correct) else 0.0
    any_count = np.where(c.bounds.abstain, -1, 0)
    add_attack_as_run(result, correct, any_count, correct & covered, c.by_train.train_sigmas.size, attack.n_changed)
