"""The Markdown tables of ``tools.compare``: the Gaussian headline numbers, every family on one
axis, certified accuracy against the L2 radius (Gaussian runs), against k poisoned samples with
their labels unchanged (Gaussian runs) and against any k changed training samples (every run)."""

from __future__ import annotations

from certssb.errors import CertSSBError
from certssb.tools.one_axis import any_count_curve, family, one_axis_row

__all__ = ["any_count_table", "metrics_table", "one_axis_table", "poison_table", "radius_table"]

VARIANT_ORDER = ("joint", "joint_memory", "paper", "paper_memory")
VARIANT_LABELS = {"joint": "joint (sound)", "joint_memory": "joint+memory (sound)",
                  "paper": "paper (test-time only)", "paper_memory": "paper+memory (test-time only)"}


def _num(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _acr(split_metrics: dict, variant: str):
    """ACR of a variant; reads ``acr_by_variant`` and the older layout (``acr`` a dict)."""
    acr = split_metrics.get("acr")
    if isinstance(acr, dict):
        return acr.get(variant)
    return (split_metrics.get("acr_by_variant") or {}).get(variant, acr if variant == "joint" else None)


def _columns_table(first: str, rows: list, columns: list[tuple[str, dict]]) -> str:
    head = f"| {first} | " + " | ".join(c for c, _ in columns) + " |"
    sep = "|---:|" + "---:|" * len(columns)
    lines = [f"| {r:g} | " + " | ".join(_num(col.get(r)) for _, col in columns) + " |" for r in rows]
    return "\n".join([head, sep, *lines])


def gaussian(summaries: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    return [(label, s) for label, s in summaries if family(s) == "gaussian"]


def metrics_table(summaries: list[tuple[str, dict]]) -> str:
    """Headline numbers of the Gaussian runs, the sound ACR first."""
    head = ("| run | ACR clean (joint, sound) | attack covered (exact, sound) | clean acc | ASR | undefended ASR "
            "| ACR clean (paper, test-time only) | sigma train min | sigma test median |")
    sep = "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    rows = []
    for label, s in summaries:
        m = s["metrics"]
        clean = m["clean"]
        covered = (clean.get("covered_fraction") or {})
        cov = covered.get("exact_memory", covered.get("exact"))
        rows.append(
            f"| {label} | {_num(_acr(clean, 'joint'), 4)} | {_num(cov)} | {_num(m['clean_accuracy'])} "
            f"| {_num(m['asr'])} | {_num(m.get('undefended_asr'))} | {_num(_acr(clean, 'paper'), 4)} "
            f"| {s['sigma']['train_min']:.3f} | {s['sigma']['test_clean']['median']:.3f} |")
    return "\n".join([head, sep, *rows])


def one_axis_table(summaries: list[tuple[str, dict]]) -> str:
    """Every run of either family on the axis they share (docs/METHOD.md 8.3)."""
    head = ("| run | family | models trained | training s | clean acc | realised attack certified (clean) "
            "| realised attack certified (triggered) | median certified any k (clean) |")
    sep = "|---|---|---:|---:|---:|---:|---:|---:|"
    rows = []
    for label, s in summaries:
        r = one_axis_row(s, "clean")
        median = "" if r["any_count_median"] is None else str(r["any_count_median"])
        rows.append(f"| {label} | {r['family']} | {'' if r['n_members'] is None else r['n_members']} "
                    f"| {_num(r['train_s'], 1)} | {_num(r['clean_accuracy'])} "
                    f"| {_num(r['realised_attack_certified_clean'])} "
                    f"| {_num(r['realised_attack_certified_triggered'])} | {median} |")
    return "\n".join([head, sep, *rows])


def radius_table(summaries: list[tuple[str, dict]], split: str) -> str:
    """Radius rows, one column per (Gaussian run, variant); the runs must share the radius grid."""
    grid = summaries[0][1]["curves"][split]["radii"]
    columns = []
    for label, s in summaries:
        curve = s["curves"][split]
        if curve["radii"] != grid:
            raise CertSSBError(f"runs use different radius grids ({curve['radii']} vs {grid})")
        for variant in VARIANT_ORDER:
            if variant in curve["certified_accuracy"]:
                if s["method"] == "rab" and variant in ("paper", "paper_memory"):
                    continue  # identical to joint for a fixed sigma
                columns.append((f"{label}: {VARIANT_LABELS[variant]}",
                                dict(zip(grid, curve["certified_accuracy"][variant]))))
    return _columns_table("radius", grid, columns)


def poison_table(summaries: list[tuple[str, dict]], split: str) -> str | None:
    """Certified accuracy against k poisoned samples: k rows (union of the runs' grids), one column
    per (run, sound variant); None when no run has a poison-count curve."""
    columns = []
    for label, s in summaries:
        pc = (s["curves"].get(split) or {}).get("poison_count")
        if not pc:
            continue
        for variant, values in pc["certified_accuracy"].items():
            name = f"{label}: {VARIANT_LABELS.get(variant, variant)}, eta {pc['eta']:.3g}, eps {pc['eps']:.3g}"
            columns.append((name, dict(zip(pc["counts"], values))))
    if not columns:
        return None
    counts = sorted({k for _, col in columns for k in col})
    return _columns_table("k poisoned", counts, columns)


def any_count_table(summaries: list[tuple[str, dict]], split: str) -> str | None:
    """Certified accuracy against any k changed training samples: k rows (union of the grids), one
    column per run; None when no run has the curve."""
    columns = []
    for label, s in summaries:
        curve = any_count_curve(s, split)
        if curve is not None:
            columns.append((label, dict(zip(*curve))))
    if not columns:
        return None
    counts = sorted({k for _, col in columns for k in col})
    return _columns_table("k changed", counts, columns)
