"""The overlay of every family on the k axis: certified accuracy against any k changed training
samples (``curves.<split>.any_count``), one curve per method or run, drawn by ``tools.report``
and ``tools.compare``.

The x axis is symlog (0 is a real point: the certified-correct share with nothing changed) and
ends where every curve has reached 0; each curve has its own colour and marker, the line style
tells the family (solid: count, dashed: Gaussian), identical curves are drawn once and named
together; the legend lists the curves in natural order
(numbers by value: ``n_parts=5`` before ``n_parts=20``); dotted vertical lines mark how many
training samples the attack changed.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from certssb.plots import fold_identical

__all__ = ["KCurve", "curve_style", "natural_key", "overlay_any_count", "x_limit"]

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
FAMILY_STYLE = {"count": "-", "gaussian": "--"}


@dataclass
class KCurve:
    """One curve: ``values[j]`` is the certified accuracy against any ``counts[j]`` changed samples."""

    label: str
    counts: list[int]
    values: list[float]
    family: str = "count"


def natural_key(text: str) -> list:
    """Sort key that orders the numbers inside ``text`` by value (``"p=5" < "p=20"``)."""
    out: list = []
    for token in re.split(r"(\d+(?:\.\d+)?)", str(text)):
        if re.fullmatch(r"\d+(?:\.\d+)?", token):
            out.append((0, float(token), ""))
        elif token:
            out.append((1, 0.0, token.lower()))
    return out


def x_limit(curves: Sequence[KCurve]) -> int:
    """The smallest grid k at which every curve has reached 0 (a curve that never does: its last
    k); at least 1, so the axis always shows k = 0 and 1."""
    ends = []
    for c in curves:
        zero = [k for k, v in zip(c.counts, c.values) if v == v and v <= 0.0]  # v == v: not NaN
        ends.append(zero[0] if zero else (c.counts[-1] if c.counts else 1))
    return max([1] + ends)


def curve_style(n: int) -> tuple[tuple, str]:
    """Colour and marker of the ``n``-th curve: ten distinct hues first (tab20's dark tones), then
    their light tones with the markers shifted by one, so no two of 20 curves look alike."""
    import matplotlib.pyplot as plt

    tab20 = plt.get_cmap("tab20")
    hue, tone = n % 10, (n // 10) % 2
    return tuple(tab20(2 * hue + tone)), MARKERS[(n + n // 10) % len(MARKERS)]


def _draw(ax, curves: Sequence[KCurve]) -> None:
    ordered = sorted(curves, key=lambda c: natural_key(c.label))
    series = {i: (c.family, c.counts, c.values) for i, c in enumerate(ordered)}  # equal family and points: one line
    for n, (same, _) in enumerate(fold_identical(series)):
        c = ordered[same[0]]
        colour, marker = curve_style(n)
        label = " = ".join(ordered[i].label for i in same) + \
            (f" ({c.family}, identical curves)" if len(same) > 1 else f" ({c.family})")
        ax.plot(c.counts, c.values, color=colour, marker=marker, markersize=4,
                linestyle=FAMILY_STYLE.get(c.family, "-."), linewidth=1.4,
                label=textwrap.fill(label, 60, subsequent_indent="  "))


def _mark_changed(ax, changed: Sequence[int]) -> None:
    for k in sorted({int(k) for k in changed if k is not None}):
        ax.axvline(k, color="0.35", linestyle=":", linewidth=1.2, label=f"the attack changed {k} training samples")


def overlay_any_count(curves: Sequence[KCurve], path: Path, title: str,
                      changed: Sequence[int] = ()) -> list[str]:
    """Write the overlay to ``path``; returns the legend's entries in order (empty, and nothing
    written, when no curve has a point)."""
    curves = [c for c in curves if c.counts]
    if not curves:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.0, 4.8))
    _draw(ax, curves)
    _mark_changed(ax, changed)
    ax.set_xscale("symlog", linthresh=1.0)
    right = x_limit(curves)
    ticks = sorted({k for c in curves for k in c.counts if k <= right})
    ax.set_xticks(ticks, [str(k) for k in ticks])
    ax.set_xlim(0, right * 1.05)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("k: training samples changed arbitrarily (features and labels), symlog")
    ax.set_ylabel("certified accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    legend = ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    entries = [t.get_text() for t in legend.get_texts()]
    plt.close(fig)
    return entries
