"""Certify one test set and write the run's outputs (summary.json, certificates.csv, plots)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from certssb.certifier import (
    CertifiedMemory,
    certified_accuracy_curve,
    certify_scores_cfg,
    covered_fraction,
    expected_gap,
    processing_order,
    radius_variants,
    storage_update,
    summary_metrics,
)

# Radius variants the storage-update memory is run for (distances live in raw input space,
# so the whitened ``budget`` has no memory counterpart).
MEMORY_VARIANTS = ("paper", "joint")


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
    """One storage-update memory per radius variant, shared by several test sets."""

    def __init__(self, dim: int) -> None:
        self.memories = {v: CertifiedMemory(dim) for v in MEMORY_VARIANTS}


def certify_split(name, x_flat, labels, indices, votes, sigmas, sigma_train_min, cert_cfg, joint_l2, target,
                  shared: SharedMemories | None = None, copy_memory_from=None) -> SplitResult:
    """Bounds, radius variants, optional storage-update memory, metrics and curves for one set."""
    labels = np.asarray(labels, dtype=np.int64)
    bounds = certify_scores_cfg(votes.prob_sum, votes.votes, votes.n_members, cert_cfg)
    radii = radius_variants(bounds.gap, sigmas, sigma_train_min)
    prediction = bounds.prediction
    correct = prediction == labels
    grid = [float(r) for r in cert_cfg.radii]
    table = pd.DataFrame({
        "split": name,
        "index": np.asarray(indices, dtype=np.int64),
        "label": labels,
        "prediction": prediction,
        "sigma": sigmas,
        "p_a_lower": bounds.p_a_lower,
        "p_b_upper": bounds.p_b_upper,
        "p_a_mean": bounds.p_a_mean,
        "abstain": bounds.abstain,
        "radius_joint": radii["joint"],
        "radius_paper": radii["paper"],
        "radius_budget": radii["budget"],
        "radius_expected_diagnostic": sigmas * expected_gap(bounds.p_a_mean, bounds.p_b_mean) / 2.0,
        "correct": correct,
        "attack_joint_l2": joint_l2,
    })
    curves = {"radii": grid, "certified_accuracy": {}}
    acr = {}
    covered = {}
    for variant, radius in radii.items():
        curves["certified_accuracy"][variant] = certified_accuracy_curve(correct, radius, grid).tolist()
        acr[variant] = float(np.mean(radius * correct))
        covered[variant] = covered_fraction(radius, joint_l2) if variant != "budget" else None
    metrics = summary_metrics(correct, radii["joint"], bounds.abstain)
    metrics["acr"] = acr
    metrics["covered_fraction"] = covered
    if name == "triggered":
        metrics["asr"] = float(np.mean(prediction == target)) if len(prediction) else None

    memory_info: dict = {}
    if cert_cfg.memory.enabled:
        order = processing_order(len(labels), str(cert_cfg.memory.order), int(cert_cfg.memory.order_seed))
        memory_info = {"order": str(cert_cfg.memory.order), "order_seed": int(cert_cfg.memory.order_seed),
                       "shared": bool(cert_cfg.memory.shared), "processing_order_first": order[:20].tolist()}
        for variant in MEMORY_VARIANTS:
            key = f"{variant}_memory"
            if copy_memory_from is not None:  # entries of a shared memory, stored with another set
                source, positions = copy_memory_from
                src = source.table.iloc[positions]
                label_m = src[f"prediction_{key}"].to_numpy()
                radius_m = src[f"radius_{key}"].to_numpy()
                action_m = src[f"action_{key}"].to_numpy()
            else:
                mem = shared.memories[variant] if shared is not None else None
                res = storage_update(x_flat, prediction, radii[variant], order, memory=mem)
                label_m, radius_m, action_m = res.label, res.radius, res.action
            correct_m = label_m == labels
            table[f"prediction_{key}"] = label_m
            table[f"radius_{key}"] = radius_m
            table[f"action_{key}"] = action_m
            table[f"correct_{key}"] = correct_m
            curves["certified_accuracy"][key] = certified_accuracy_curve(correct_m, radius_m, grid).tolist()
            acr[key] = float(np.mean(radius_m * correct_m))
            covered[key] = covered_fraction(radius_m, joint_l2)
            memory_info[variant] = {"n_trimmed": int(np.sum(action_m == "trimmed")),
                                    "n_relabelled": int(np.sum(action_m == "relabelled")),
                                    "accuracy": float(correct_m.mean()) if len(labels) else None}
            if name == "triggered":
                metrics.setdefault("asr_memory", {})[variant] = float(np.mean(label_m == target))
        table["memory_position"] = (copy_memory_from[0].table["memory_position"].to_numpy()[copy_memory_from[1]]
                                    if copy_memory_from is not None else np.argsort(order))
    return SplitResult(name, table, metrics, curves, memory_info, bounds.alpha_per_bound)


def certify_sets(sets: dict, votes: dict, sigma_train_min: float, cert_cfg, joint_l2: np.ndarray,
                 target) -> dict[str, SplitResult]:
    """Certify ``clean``, ``triggered_all`` and ``triggered`` (in that order: with a shared memory,
    clean inputs are stored first, then every triggered input; the RAB-convention ``triggered`` set
    is a subset of ``triggered_all`` and reads its memory entries). Returned in report order.

    ``target``: the attack's label per test input (``PoisonedData.attack_labels(y_test)``), or one
    class for every input; the ``triggered`` set's ASR counts predictions equal to it."""
    targets = np.broadcast_to(np.asarray(target, dtype=np.int64), np.shape(joint_l2))
    votes = dict(votes)
    rab = sets["triggered"]
    positions = rab.indices  # triggered_all is indexed by the test index
    votes["triggered"] = votes["triggered_all"].subset(positions)
    shared = None
    if cert_cfg.memory.enabled and cert_cfg.memory.shared:
        shared = SharedMemories(int(np.prod(sets["clean"].x.shape[1:])))
    results = {}
    for name in ("clean", "triggered_all", "triggered"):
        ts = sets[name]
        copy_from = (results["triggered_all"], positions) if shared is not None and name == "triggered" else None
        results[name] = certify_split(
            name, ts.x.reshape(len(ts.x), -1).numpy().astype(np.float64), ts.labels, ts.indices, votes[name],
            ts.sigmas.numpy().astype(np.float64), sigma_train_min, cert_cfg, joint_l2[ts.indices], targets[ts.indices],
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


def plot_curves(summary: dict, path: Path) -> None:
    """Certified accuracy against radius: one panel per test set, one line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in ("clean", "triggered") if n in summary["curves"]]
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        curve = summary["curves"][name]
        for variant, values in curve["certified_accuracy"].items():
            style = "--" if variant.endswith("_memory") else "-"
            label = "budget (whitened units)" if variant == "budget" else variant
            ax.plot(curve["radii"], values, style, marker="o", markersize=3, label=label)
        ax.set_title(f"{name} test set ({summary['method']}, N={summary['n_members']})")
        ax.set_xlabel("radius (L2)")
        ax.set_ylabel("certified accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sigma_histogram(sigmas: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, values in sigmas.items():
        ax.hist(np.asarray(values), bins=40, alpha=0.5, label=name)
    ax.set_xlabel("sigma")
    ax.set_ylabel("samples")
    ax.set_title("per-sample noise levels")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(out: Path, summary: dict, results: dict[str, SplitResult] | None,
                  sigmas: dict[str, np.ndarray] | None) -> None:
    """Write summary.json, certificates.csv, sigmas.npz and the plots into ``out``."""
    out = Path(out)
    if results:
        table = pd.concat([r.table for r in results.values()], ignore_index=True)
        tmp = out / "certificates.csv.tmp"
        table.to_csv(tmp, index=False, float_format="%.10g")
        os.replace(tmp, out / "certificates.csv")
        plot_curves(summary, out / "certified_accuracy.png")
    if sigmas:
        np.savez(out / "sigmas.npz", **sigmas)
        if summary.get("sigma", {}).get("optimiser") != "fixed":
            plot_sigma_histogram(sigmas, out / "sigma_histogram.png")
    write_summary(out / "summary.json", summary)


def format_table(summary: dict) -> str:
    """A short text table of the run's main numbers."""
    m = summary["metrics"]
    lines = [f"method={summary['method']}  N={summary['n_members']}  alpha={summary['alpha']}",
             f"clean accuracy {m['clean_accuracy']:.4f}   ASR {m['asr'] if m['asr'] is not None else float('nan'):.4f}"]
    if m.get("undefended_asr") is not None:
        lines.append(f"undefended: clean accuracy {m['undefended_clean_accuracy']:.4f}   ASR {m['undefended_asr']:.4f}")
    lines.append(f"attack joint L2 (max over test inputs) {m['attack_joint_l2']:.4f}")
    for name in ("clean", "triggered"):
        curve = summary["curves"][name]
        radii = curve["radii"]
        header = f"{name:<10}{'variant':<14}" + "".join(f"r={r:<7.3g}" for r in radii)
        lines.append(header)
        for variant, values in curve["certified_accuracy"].items():
            lines.append(f"{'':<10}{variant:<14}" + "".join(f"{v:<9.4f}" for v in values))
    return "\n".join(lines)
