"""The run's plots: certified accuracy against L2 radius and against the number of poisoned samples.

Only L2 radii are drawn on an L2 axis; the whitened budget G/2 never is. The sound variant
(``joint``) comes first; ``paper`` is labelled as a test-time (evasion) certificate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

VARIANT_LABELS = {
    "joint": "joint (sound: poisoning + trigger)",
    "joint_memory": "joint + memory (sound, deployed)",
    "paper": "paper (test-time/evasion only)",
    "paper_memory": "paper + memory (test-time/evasion only)",
}
SPLITS_SHOWN = ("clean", "triggered")


def variant_label(variant: str) -> str:
    """Display name of a radius variant (its key in summary.json is unchanged)."""
    return VARIANT_LABELS.get(variant, variant)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _covered_note(split_metrics: dict) -> str:
    cov = (split_metrics or {}).get("covered_fraction") or {}
    key = "exact_memory" if cov.get("exact_memory") is not None else "exact"
    if cov.get(key) is None:
        return ""
    return f"realised attack covered (exact ellipsoid{', memory' if key == 'exact_memory' else ''}): {cov[key]:.0%}"


def plot_curves(summary: dict, path: Path) -> None:
    """Certified accuracy against L2 radius: one panel per test set, one line per L2 variant.

    The attack's median joint L2 size is marked when it lies on the axis; the share of inputs whose
    certificate covers the realised attack (exact ellipsoid test, sound variant) is in the title.
    """
    plt = _pyplot()
    names = [n for n in SPLITS_SHOWN if n in summary["curves"]]
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.4), squeeze=False)
    joint_l2 = (summary.get("metrics") or {}).get("attack_joint_l2_median")
    for ax, name in zip(axes[0], names):
        curve = summary["curves"][name]
        for variant, values in curve["certified_accuracy"].items():
            style = "--" if variant.endswith("_memory") else "-"
            width = 2.2 if variant.startswith("joint") else 1.2
            ax.plot(curve["radii"], values, style, marker="o", markersize=3, linewidth=width,
                    label=variant_label(variant))
        if joint_l2 is not None and 0 < joint_l2 <= max(curve["radii"]):
            ax.axvline(joint_l2, color="grey", linestyle=":", label=f"attack joint L2 (median) {joint_l2:.3g}")
        note = _covered_note(summary["metrics"].get(name))
        ax.set_title(f"{name} test set ({summary['method']}, N={summary['n_members']})"
                     + (f"\n{note}" if note else ""), fontsize=9)
        _finish_axis(ax, "radius (L2)")
    _save(plt, fig, path)


def plot_poison_count(summary: dict, path: Path) -> bool:
    """Certified accuracy against the number k of poisoned training samples (symlog axis).

    False (nothing written) when no test set has a ``poison_count`` curve.
    """
    names = [n for n in SPLITS_SHOWN if (summary["curves"].get(n) or {}).get("poison_count")]
    if not names:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        pc = summary["curves"][name]["poison_count"]
        counts = np.asarray(pc["counts"], dtype=float)
        for variant, values in pc["certified_accuracy"].items():
            style = "--" if variant.endswith("_memory") else "-"
            ax.plot(counts, values, style, marker="o", markersize=3, label=variant_label(variant))
        n_p = (summary.get("attack") or {}).get("n_poisoned")
        if n_p:
            ax.axvline(n_p, color="grey", linestyle=":", label=f"poisoned by the attack: {n_p}")
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(-0.3, max(counts[-1], 1) * 1.3)
        ticks = [int(k) for k in counts if k == 0 or np.log10(k) % 1 == 0]  # 0, 1, 10, 100, ...
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(t) for t in ticks])
        ax.set_title(f"{name} test set: each poisoned sample L2 <= {pc['eta']:.3g}, "
                     f"test trigger L2 <= {pc['eps']:.3g}", fontsize=9)
        _finish_axis(ax, "k = poisoned training samples (any k, the attacker's choice)")
    _save(plt, fig, path)
    return True


def plot_any_count(summary: dict, path: Path) -> bool:
    """Certified accuracy against k, the number of training samples changed ARBITRARILY (features
    and labels), on a symlog axis: the one axis of every family (the Gaussian family certifies
    k = 0 only). The number of samples the attack changed is marked. False when no curve exists."""
    names = [n for n in SPLITS_SHOWN if (summary["curves"].get(n) or {}).get("any_count")]
    if not names:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.4), squeeze=False)
    label = f"{summary['method']} (N={summary['n_members']})"
    for ax, name in zip(axes[0], names):
        curve = summary["curves"][name]["any_count"]
        counts = np.asarray(curve["counts"], dtype=float)
        ax.plot(counts, curve["certified_accuracy"], "-", marker="o", markersize=3, label=label)
        changed = (summary.get("metrics", {}).get(name) or {}).get("attack_changed_samples")
        if changed:
            ax.axvline(changed, color="grey", linestyle=":", label=f"changed by the attack: {changed}")
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(-0.3, max(counts[-1], 1) * 1.3)
        ticks = [int(k) for k in counts if k == 0 or np.log10(k) % 1 == 0]
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(t) for t in ticks])
        done = (summary.get("metrics", {}).get(name) or {}).get("realised_attack_certified")
        ax.set_title(f"{name} test set: certified against any k changed training samples"
                     + (f"\nattack as run certified for {done:.0%}" if done is not None else ""), fontsize=9)
        _finish_axis(ax, "k = training samples changed arbitrarily (features and labels)")
    _save(plt, fig, path)
    return True


def _finish_axis(ax, xlabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _save(plt, fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sigma_histogram(sigmas: dict[str, np.ndarray], path: Path) -> None:
    """Histogram of the per-sample noise levels of each set."""
    plt = _pyplot()
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
