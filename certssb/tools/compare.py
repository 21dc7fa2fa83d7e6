"""Side-by-side certified-accuracy table of several runs (e.g. RAB vs Cert-SSB).

    python -m certssb.tools.compare RUN_DIR [RUN_DIR ...] [--split clean|triggered] [--out FILE.md]

The headline table leads with the sound ACR (``joint``) and the share of inputs whose sound
certificate covers the realised attack (exact ellipsoid test); ``paper`` is a test-time (evasion)
certificate and is labelled so. Then every run's L2 curves (the sound variant first, with and
without memory) become columns, the radius grid the rows; runs must share the radius grid. Last,
certified accuracy against k poisoned training samples (``curves.<split>.poison_count``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from certssb.errors import CertSSBError

VARIANT_ORDER = ("joint", "joint_memory", "paper", "paper_memory")
VARIANT_LABELS = {"joint": "joint (sound)", "joint_memory": "joint+memory (sound)",
                  "paper": "paper (test-time only)", "paper_memory": "paper+memory (test-time only)"}


def _label(summary: dict, path: Path) -> str:
    name = summary.get("method", path.name)
    s0 = summary.get("sigma_0")
    return f"{name} (sigma_0={s0:g})" if s0 is not None else name


def load(run_dir: Path) -> dict:
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        raise CertSSBError(f"{path} not found: pass run directories that hold a summary.json")
    summary = json.loads(path.read_text())
    if summary.get("status") != "complete":
        raise CertSSBError(f"{path} is not a complete run (status {summary.get('status')!r})")
    return summary


def table(summaries: list[tuple[str, dict]], split: str) -> str:
    """Markdown table: radius rows, one column per (run, variant)."""
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
                columns.append((f"{label}: {VARIANT_LABELS[variant]}", curve["certified_accuracy"][variant]))
    head = "| radius | " + " | ".join(c for c, _ in columns) + " |"
    sep = "|---:|" + "---:|" * len(columns)
    rows = [f"| {r:g} | " + " | ".join(f"{vals[i]:.3f}" for _, vals in columns) + " |" for i, r in enumerate(grid)]
    return "\n".join([head, sep, *rows])


def _acr(split_metrics: dict, variant: str):
    """ACR of a variant; reads ``acr_by_variant`` and the older layout (``acr`` a dict)."""
    acr = split_metrics.get("acr")
    if isinstance(acr, dict):
        return acr.get(variant)
    return (split_metrics.get("acr_by_variant") or {}).get(variant, acr if variant == "joint" else None)


def _num(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def metrics_table(summaries: list[tuple[str, dict]]) -> str:
    """Headline numbers, the sound ACR first."""
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
    head = "| k poisoned | " + " | ".join(c for c, _ in columns) + " |"
    sep = "|---:|" + "---:|" * len(columns)
    rows = [f"| {k} | " + " | ".join(_num(col.get(k)) for _, col in columns) + " |" for k in counts]
    return "\n".join([head, sep, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m certssb.tools.compare", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--split", default="clean,triggered")
    parser.add_argument("--title", default="Certified accuracy")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        summaries = [(_label(s, p), s) for p in args.runs for s in [load(p)]]
        parts = [f"## {args.title}", "", metrics_table(summaries), ""]
        for split in args.split.split(","):
            parts += [f"Certified accuracy against L2 radius, `{split}` test set:", "", table(summaries, split), ""]
            poison = poison_table(summaries, split)
            if poison:
                parts += [f"Certified accuracy against k poisoned training samples, `{split}` test set:", "",
                          poison, ""]
        text = "\n".join(parts)
    except (CertSSBError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
