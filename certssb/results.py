"""Certify one test set and write the run's outputs (summary.json, certificates.csv, plots).

The plots are drawn by :mod:`certssb.plots`, the console table and sentences by :mod:`certssb.console`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from certssb.certifier import (
    CentreStore,
    CertifiedMemory,
    GridVotes,
    RealisedAttack,
    certify_grid_cfg,
    certified_accuracy_curve,
    certified_poison_count,
    certify_scores_cfg,
    covered_after_memory,
    covered_fraction,
    expected_gap,
    poison_certified_accuracy,
    poison_count_after_memory,
    poison_count_grid,
    processing_order,
    radius_variants,
    resolve_poison_sizes,
    storage_update,
    summary_metrics,
)
from certssb.console import format_table, plain_statements  # noqa: F401  (the run's console output)
from certssb.dataset.batched import as_images
from certssb.plots import plot_curves, plot_poison_count, plot_sigma_histogram

# Radius variants the storage-update memory is run for (distances live in raw input space,
# so the whitened ``budget`` has no memory counterpart).
MEMORY_VARIANTS = ("joint", "paper")
# L2 radius variants drawn on the radius axis (``budget`` is whitened, never drawn there).
L2_VARIANTS = ("joint", "paper")
# Order of the curves everywhere: the sound variant first; ``paper`` is a test-time certificate.
VARIANT_ORDER = ("joint", "joint_memory", "paper", "paper_memory")


@dataclass
class SplitResult:
    """Certificates of one test set: a per-input table, metrics and curves."""

    name: str
    table: pd.DataFrame
    metrics: dict
    curves: dict
    memory: dict = field(default_factory=dict)
    alpha_per_bound: float = float("nan")


class SharedMemories:
    """The storage-update memories of the radius variants, one per variant over one store of
    centres (the variants add the same inputs in the same order). Each test set gets its own,
    or (``certifier.memory.shared``) one serves every test set."""

    def __init__(self, dim: int, capacity: int = 1024) -> None:
        centres = CentreStore(dim, capacity)
        self.memories = {v: CertifiedMemory(dim, capacity, centres=centres) for v in MEMORY_VARIANTS}


def flat_vectors(x) -> np.ndarray:
    """Inputs as ``[m, d]`` vectors for the storage-update memory: an array as it is; images
    (``BatchedImages`` or a float tensor ``[m, C, H, W]``) read batch by batch, in the batches'
    own float32 (exact: no float64 copy of the whole set)."""
    if isinstance(x, np.ndarray):
        return x.reshape(len(x), -1)
    parts = [b.reshape(len(b), -1).numpy() for b in as_images(x).batches(1024)]
    return np.concatenate(parts) if parts else np.zeros((0, int(np.prod(x.shape[1:]))), dtype=np.float32)


def certify_split(name, x_flat, labels, indices, votes, sigmas, certificate_train_sigmas, cert_cfg,
                  attack: RealisedAttack, target, shared: SharedMemories | None = None,
                  copy_memory_from=None) -> SplitResult:
    """Bounds, radius variants, optional storage-update memory, metrics and curves for one set.

    ``x_flat``: the inputs, only read by the storage-update memory (``flat_vectors``: an array
    [m, d], or images converted batch by batch when the memory needs them).

    ``certificate_train_sigmas`` [n_train]: the per-training-sample sigmas the certificate may
    assume; the ``joint`` radius uses their minimum, the exact ellipsoid (coverage of the realised
    ``attack``, certified poisoned-sample count) uses all of them.

    With grid votes (``sigma_optimiser=grid``) the test sigma of each input is chosen here
    (:func:`certssb.certifier.certify_grid_cfg`) and replaces ``sigmas``: it is the ``sigma``
    column of the table, and ``SplitResult.alpha_per_bound`` is the alpha the bounds used.
    """
    labels = np.asarray(labels, dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    train_sigmas = np.asarray(certificate_train_sigmas, dtype=np.float64).reshape(-1)
    per_input_train = None  # grid_ensembles: the training sigma of the ensemble each input was certified with
    sizes = resolve_poison_sizes(attack, cert_cfg.poison_eta, cert_cfg.poison_eps)
    if isinstance(votes, GridVotes):
        selected = certify_grid_cfg(votes, cert_cfg, poison=(sizes.eps, sizes.eta, train_sigmas.size))
        bounds, sigmas = selected.bounds, selected.sigma
        if votes.candidate_train is not None:
            per_input_train = selected.train_sigma
    else:
        bounds = certify_scores_cfg(votes.prob_sum, votes.votes, votes.n_members, cert_cfg)
    by_train = _ByTrainSigma(per_input_train, train_sigmas)
    radii = radius_variants(bounds.gap, sigmas, train_sigmas)
    if per_input_train is not None:
        radii["joint"] = np.minimum(sigmas, per_input_train) * bounds.gap / 2.0
    prediction = bounds.prediction
    correct = prediction == labels
    grid = [float(r) for r in cert_cfg.radii]
    joint_l2 = attack.joint_l2(indices)
    test_delta = attack.test_delta_l2[indices]
    whitened = by_train(lambda m, ts: attack.whitened(indices[m], sigmas[m], ts))
    budget = radii["budget"]
    poison_count = by_train(lambda m, ts: certified_poison_count(budget[m], sigmas[m], ts, sizes.eps, sizes.eta))
    table = pd.DataFrame({
        "split": name,
        "index": indices,
        "label": labels,
        "prediction": prediction,
        "sigma": sigmas,
        "sigma_train_certified": by_train(lambda m, ts: np.full(len(labels), ts.min())[m]),  # what `joint` uses
        "p_a_lower": bounds.p_a_lower,
        "p_b_upper": bounds.p_b_upper,
        "p_a_mean": bounds.p_a_mean,
        "abstain": bounds.abstain,
        "radius_joint": radii["joint"],
        "radius_paper": radii["paper"],
        "whitened_budget": budget,
        "radius_expected_diagnostic": sigmas * expected_gap(bounds.p_a_mean, bounds.p_b_mean) / 2.0,
        "correct": correct,
        "attack_joint_l2": joint_l2,
        "attack_whitened": whitened,
        "covered_exact": whitened < budget,
        "certified_poison_count": poison_count,
    })
    counts = poison_count_grid(len(train_sigmas))
    curves = {"radii": grid, "certified_accuracy": {}, "poison_count": {
        **sizes.as_dict(), "counts": counts,
        "certified_accuracy": {"joint": poison_certified_accuracy(correct, poison_count, counts).tolist()},
        "n_poisoned": int(attack.poisoned_index.size),
        "certified_accuracy_at_n_poisoned": {
            "joint": float(poison_certified_accuracy(correct, poison_count, [attack.poisoned_index.size])[0])}}}
    acr = {}
    for variant in L2_VARIANTS:
        radius = radii[variant]
        curves["certified_accuracy"][variant] = certified_accuracy_curve(correct, radius, grid).tolist()
        acr[variant] = float(np.mean(radius * correct))
    covered = {"exact": float(np.mean(whitened < budget)),
               "joint_l2_ball": covered_fraction(radii["joint"], joint_l2)}
    metrics = summary_metrics(correct, radii["joint"], bounds.abstain)
    metrics["acr_by_variant"] = acr
    metrics["whitened_budget_mean"] = float(np.mean(budget * correct))
    metrics["covered_fraction"] = covered
    metrics["poison_count_median"] = _median_count(correct, poison_count)
    if name == "triggered":
        metrics["asr"] = float(np.mean(prediction == target)) if len(prediction) else None

    memory_info: dict = {}
    if cert_cfg.memory.enabled:
        order = processing_order(len(labels), str(cert_cfg.memory.order), int(cert_cfg.memory.order_seed))
        memory_info = {"order": str(cert_cfg.memory.order), "order_seed": int(cert_cfg.memory.order_seed),
                       "shared": bool(cert_cfg.memory.shared), "processing_order_first": order[:20].tolist()}
        own = None  # without a shared memory: this set's memories, one store of centres for the variants
        if shared is None and copy_memory_from is None:
            own = SharedMemories(int(np.prod(np.shape(x_flat)[1:])) if len(labels) else 1, max(len(labels), 1))
        for variant in MEMORY_VARIANTS:
            key = f"{variant}_memory"
            if copy_memory_from is not None:  # entries of a shared memory, stored with another set
                source, positions = copy_memory_from
                src = source.table.iloc[positions]
                label_m = src[f"prediction_{key}"].to_numpy()
                radius_m = src[f"radius_{key}"].to_numpy()
                action_m = src[f"action_{key}"].to_numpy()
            else:
                if not isinstance(x_flat, np.ndarray):
                    x_flat = flat_vectors(x_flat)
                mem = (shared if shared is not None else own).memories[variant]
                res = storage_update(x_flat, prediction, radii[variant], order, memory=mem)
                label_m, radius_m, action_m = res.label, res.radius, res.action
            correct_m = label_m == labels
            table[f"prediction_{key}"] = label_m
            table[f"radius_{key}"] = radius_m
            table[f"action_{key}"] = action_m
            table[f"correct_{key}"] = correct_m
            curves["certified_accuracy"][key] = certified_accuracy_curve(correct_m, radius_m, grid).tolist()
            acr[key] = float(np.mean(radius_m * correct_m))
            if variant == "joint":  # the attacker's-terms certificates are reported for the sound variant only
                covered_m = covered_after_memory(action_m, radii["joint"], radius_m, budget, whitened, test_delta,
                                                 joint_l2)
                count_m = by_train(lambda m, ts: poison_count_after_memory(
                    action_m[m], radii["joint"][m], radius_m[m], budget[m], sigmas[m], ts, sizes.eps, sizes.eta))
                table["covered_exact_joint_memory"] = covered_m
                table["certified_poison_count_joint_memory"] = count_m
                covered["exact_memory"] = float(np.mean(covered_m))
                covered["joint_l2_ball_memory"] = covered_fraction(radius_m, joint_l2)
                metrics["poison_count_median_memory"] = _median_count(correct_m, count_m)
                curves["poison_count"]["certified_accuracy"][key] = poison_certified_accuracy(
                    correct_m, count_m, counts).tolist()
                curves["poison_count"]["certified_accuracy_at_n_poisoned"][key] = float(
                    poison_certified_accuracy(correct_m, count_m, [attack.poisoned_index.size])[0])
            memory_info[variant] = {"n_trimmed": int(np.sum(action_m == "trimmed")),
                                    "n_relabelled": int(np.sum(action_m == "relabelled")),
                                    "accuracy": float(correct_m.mean()) if len(labels) else None}
            if name == "triggered":
                metrics.setdefault("asr_memory", {})[variant] = float(np.mean(label_m == target))
        table["memory_position"] = (copy_memory_from[0].table["memory_position"].to_numpy()[copy_memory_from[1]]
                                    if copy_memory_from is not None else np.argsort(order))
    order_keys = [k for k in VARIANT_ORDER if k in curves["certified_accuracy"]]
    curves["certified_accuracy"] = {k: curves["certified_accuracy"][k] for k in order_keys}
    metrics["acr_by_variant"] = {k: acr[k] for k in order_keys}
    return SplitResult(name, table, metrics, curves, memory_info, bounds.alpha_per_bound)


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


def _median_count(correct, counts) -> int | None:
    """Lower median of the certified poisoned-sample count over correct, certified inputs."""
    sel = np.asarray(counts)[np.asarray(correct, dtype=bool) & (np.asarray(counts) >= 0)]
    return int(np.sort(sel)[(len(sel) - 1) // 2]) if len(sel) else None


def certify_sets(sets: dict, votes: dict, certificate_train_sigmas: np.ndarray, cert_cfg, attack: RealisedAttack,
                 target) -> dict[str, SplitResult]:
    """Certify ``clean``, ``triggered_all`` and ``triggered`` (in that order: with a shared memory,
    clean inputs are stored first, then every triggered input; the RAB-convention ``triggered`` set
    is a subset of ``triggered_all`` and reads its memory entries). Returned in report order.

    ``target``: the attack's label per test input (``PoisonedData.attack_labels(y_test)``), or one
    class for every input; the ``triggered`` set's ASR counts predictions equal to it."""
    targets = np.broadcast_to(np.asarray(target, dtype=np.int64), attack.test_delta_l2.shape)
    votes = dict(votes)
    rab = sets["triggered"]
    positions = rab.indices  # triggered_all is indexed by the test index
    votes["triggered"] = votes["triggered_all"].subset(positions)
    shared = None
    if cert_cfg.memory.enabled and cert_cfg.memory.shared:
        shared = SharedMemories(int(np.prod(tuple(sets["clean"].x.shape[1:]))))
    results = {}
    for name in ("clean", "triggered_all", "triggered"):
        ts = sets[name]
        copy_from = (results["triggered_all"], positions) if shared is not None and name == "triggered" else None
        results[name] = certify_split(
            name, ts.x, ts.labels, ts.indices, votes[name],
            ts.sigmas.numpy().astype(np.float64), certificate_train_sigmas, cert_cfg, attack, targets[ts.indices],
            shared=shared, copy_memory_from=copy_from)
    return {name: results[name] for name in ("clean", "triggered", "triggered_all")}


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_summary(path: Path, summary: dict) -> None:
    _atomic_write(path, json.dumps(_json_safe(summary), indent=2, sort_keys=False) + "\n")


def _can_plot() -> bool:
    """matplotlib is importable (a GPU host may lack it: the PNGs are then skipped, with a log line)."""
    import importlib.util
    import logging

    if importlib.util.find_spec("matplotlib") is not None:
        return True
    logging.getLogger("certssb").warning("matplotlib is not installed: the PNG plots are not written")
    return False


def write_outputs(out: Path, summary: dict, results: dict[str, SplitResult] | None,
                  sigmas: dict[str, np.ndarray] | None) -> None:
    """Write summary.json, certificates.csv, sigmas.npz and the plots into ``out``."""
    out = Path(out)
    if results:
        table = pd.concat([r.table for r in results.values()], ignore_index=True)
        tmp = out / "certificates.csv.tmp"
        table.to_csv(tmp, index=False, float_format="%.10g")
        os.replace(tmp, out / "certificates.csv")
        if _can_plot():
            plot_curves(summary, out / "certified_accuracy.png")
            plot_poison_count(summary, out / "certified_poison_count.png")
    if sigmas:
        np.savez(out / "sigmas.npz", **sigmas)
        if summary.get("sigma", {}).get("optimiser") != "fixed" and _can_plot():
            plot_sigma_histogram(sigmas, out / "sigma_histogram.png")
    write_summary(out / "summary.json", summary)
