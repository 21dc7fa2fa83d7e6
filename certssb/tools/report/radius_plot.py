"""The Gaussian family's overlay: certified accuracy against the L2 radius, one line per run
(count-family runs certify no radius and are left out)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from certssb.plots import variant_label

from .values import fmt, varying

__all__ = ["plot_curves"]

STYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "v", "D", "x", "*", "+"]


def _label(by_run: pd.DataFrame, run: str, group_by: str | None, keys: list[str]) -> str:
    label_keys = [group_by] + [v for v in keys if v != group_by] if group_by else keys
    return ", ".join(f"{key}={fmt(by_run.at[run, key])}" for key in label_keys) or Path(run).name


def plot_curves(df: pd.DataFrame, path: Path, group_by: str | None) -> bool:
    """Overlay certified-accuracy curves (one line per run); False when there is nothing to plot."""
    curves = df.attrs.get("curves", {})
    runs = [r for r in df["run_dir"].tolist() if r in curves]
    if not runs:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = varying(df, df.attrs.get("params", []))
    by_run = df.set_index("run_dir")
    groups = list(dict.fromkeys(fmt(by_run.at[run, group_by]) if group_by else "" for run in runs))
    colours = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20")
    seen_in_group: dict[str, int] = {}
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for run in runs:
        radii, values = curves[run]
        g = fmt(by_run.at[run, group_by]) if group_by else ""
        k = seen_in_group.get(g, 0)
        seen_in_group[g] = k + 1
        ax.plot(radii, values, linestyle=STYLES[k % len(STYLES)], marker=MARKERS[(k // len(STYLES)) % len(MARKERS)],
                markersize=3, color=colours(groups.index(g) % colours.N), label=_label(by_run, run, group_by, keys))
    split, variant = df.attrs.get("split"), df.attrs.get("variant")
    ax.set_xlabel("radius (L2)")
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{split} test set, {variant_label(variant)}" + (f" (colour: {group_by})" if group_by else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True
