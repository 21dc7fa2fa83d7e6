"""The run's plots: certified accuracy against L2 radius (Gaussian family), against the number of
poisoned samples with labels unchanged (Gaussian family), and against the number of training samples
changed arbitrarily (every family).

Only L2 radii are drawn on an L2 axis; the whitened budget G/2 never is. The sound variant
(``joint``) comes first; ``paper`` is labelled as a test-time (evasion) certificate. Identical curves
are drawn once and named together; every line has its own marker and line style.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

VARIANT_LABELS = {
    "joint": "joint (sound)",
    "joint_memory": "joint+memory (sound, deployed)",
    "paper": "paper (evasion only)",
    "paper_memory": "paper+memory (evasion only)",
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


STYLES = {"joint": ("-", "o"), "joint_memory": ("--", "s"), "paper": (":", "^"), "paper_memory": ("-.", "v")}


def _covered_note(split_metrics: dict, relabels: bool) -> str:
    """The title's reading of the attack as run (never "covered" for an attack that relabelled)."""
    m = split_metrics or {}
    done = m.get("realised_attack_certified")
    if done is None:
        return ""
    if relabels:
        return "attack as run NOT covered: it relabelled (outside this certificate)"
    return f"attack as run certified for {done:.0%} (exact ellipsoid)"


def fold_identical(series: dict) -> list[tuple[list, object]]:
    """The series with identical ones (equal values) folded together: ``[(keys, values)]`` in the
    order of ``series``; one line then stands for all of them and none hides another."""
    out: list[tuple[list, object]] = []
    for key, values in series.items():
        same = next((entry for entry in out if entry[1] == values), None)
        if same is not None:
            same[0].append(key)
        else:
            out.append(([key], values))
    return out


def _draw(ax, xs, series: dict, label_of) -> None:
    """One line per distinct series (markers and line styles told apart; identical series drawn once
    and named together in the legend)."""
    for keys, values in fold_identical(series):
        style, marker = STYLES.get(keys[0], ("-", "o"))
        label = label_of(keys[0]) + "".join(f" = {label_of(k)}" for k in keys[1:])
        ax.plot(xs, values, style, marker=marker, markersize=4, linewidth=2.2 if keys[0].startswith("joint") else 1.4,
                label=label)


def _mark(ax, x: float | None, top: float, what: str) -> None:
    """A vertical line at ``x`` when it lies on the axis, else a legend note that it is off the axis."""
    if not x:
        return
    if x <= top:
        ax.axvline(x, color="grey", linestyle=":", label=f"{what} {x:.3g}")
    else:
        ax.plot([], [], " ", label=f"{what} {x:.3g}: off the axis (> {top:.3g})")


def plot_curves(summary: dict, path: Path) -> None:
    """Certified accuracy against L2 radius: one panel per test set, one line per L2 variant (the
    sound ``joint`` first, ``paper`` labelled evasion only), the attack's median joint L2 size marked
    (or noted as off the axis), the attack as run in the title."""
    plt = _pyplot()
    names = [n for n in SPLITS_SHOWN if n in summary["curves"]]
    fig, axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 4.6), squeeze=False)
    joint_l2 = (summary.get("metrics") or {}).get("attack_joint_l2_median")
    relabels = bool((summary.get("attack") or {}).get("relabels"))
    for ax, name in zip(axes[0], names):
        curve = summary["curves"][name]
        _draw(ax, curve["radii"], curve["certified_accuracy"], variant_label)
        _mark(ax, joint_l2, max(curve["radii"]), "attack joint L2 (median)")
        note = _covered_note(summary["metrics"].get(name), relabels)
        ax.set_title(f"{name} test set ({summary['method']}, N={summary['n_members']})"
                     + (f"\n{note}" if note else ""), fontsize=9)
        _finish_axis(ax, "L2 radius of feature changes, training and test together (labels held)")
    _save(plt, fig, path)


def plot_poison_count(summary: dict, path: Path) -> bool:
    """Certified accuracy against the number k of poisoned training samples whose features moved by
    at most eta, labels unchanged (symlog axis). False (nothing written) when no test set has one."""
    names = [n for n in SPLITS_SHOWN if (summary["curves"].get(n) or {}).get("poison_count")]
    if not names:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 4.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        pc = summary["curves"][name]["poison_count"]
        counts = np.asarray(pc["counts"], dtype=float)
        _draw(ax, counts, pc["certified_accuracy"], variant_label)
        n_p = (summary.get("attack") or {}).get("n_poisoned")
        _mark(ax, n_p, counts[-1], "poisoned by the attack:")
        _symlog(ax, counts)
        ax.set_title(f"{name} test set: each poisoned sample L2 <= {pc['eta']:.3g}, labels unchanged,\n"
                     f"test trigger L2 <= {pc['eps']:.3g}", fontsize=9)
        _finish_axis(ax, "k = poisoned training samples (features moved, labels unchanged)")
    _save(plt, fig, path)
    return True


def _symlog(ax, counts) -> None:
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(-0.3, max(counts[-1], 1) * 1.3)
    ticks = [int(k) for k in counts if k == 0 or np.log10(k) % 1 == 0]  # 0, 1, 10, 100, ...
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])


def plot_any_count(summary: dict, path: Path) -> bool:
    """Certified accuracy against k, the number of training samples changed ARBITRARILY (features
    and labels), on a symlog axis: the one axis of every family (the Gaussian family certifies
    k = 0 only). The number of samples the attack changed is marked. False when no curve exists."""
    names = [n for n in SPLITS_SHOWN if (summary["curves"].get(n) or {}).get("any_count")]
    if not names:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 4.6), squeeze=False)
    unit = "models" if summary.get("family") == "count" else "members"
    for ax, name in zip(axes[0], names):
        curve = summary["curves"][name]["any_count"]
        counts = np.asarray(curve["counts"], dtype=float)
        _draw(ax, counts, {summary["method"]: curve["certified_accuracy"]},
              lambda m: f"{m} ({summary['n_members']} {unit})")
        changed = (summary.get("metrics", {}).get(name) or {}).get("attack_changed_samples")
        _mark(ax, changed, counts[-1], "changed by the attack:")
        _symlog(ax, counts)
        done = (summary.get("metrics", {}).get(name) or {}).get("realised_attack_certified")
        ax.set_title(f"{name} test set: any k changed training samples (labels included)"
                     + (f"\nattack as run certified for {done:.0%}" if done is not None else ""), fontsize=9)
        _finish_axis(ax, "k = training samples changed arbitrarily (features and labels)")
    _save(plt, fig, path)
    return True


def _finish_axis(ax, xlabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, handlelength=4)


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
