"""Side-by-side certified-accuracy table of several runs (e.g. RAB vs Cert-SSB).

    python -m certssb.tools.compare RUN_DIR [RUN_DIR ...] [--split clean|triggered] [--out FILE.md]

Every run's curves (all radius variants, with and without memory) become columns, the radius
grid the rows; headline metrics follow. Runs must share the radius grid.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from certssb.errors import CertSSBError

VARIANT_ORDER = ("joint", "paper", "budget", "joint_memory", "paper_memory")


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
                if s["method"] == "rab" and variant in ("paper", "budget", "paper_memory"):
                    continue  # identical to joint / not informative for a fixed sigma
                columns.append((f"{label}: {variant}", curve["certified_accuracy"][variant]))
    head = "| radius | " + " | ".join(c for c, _ in columns) + " |"
    sep = "|---:|" + "---:|" * len(columns)
    rows = [f"| {r:g} | " + " | ".join(f"{vals[i]:.3f}" for _, vals in columns) + " |" for i, r in enumerate(grid)]
    return "\n".join([head, sep, *rows])


def metrics_table(summaries: list[tuple[str, dict]]) -> str:
    head = "| run | clean acc | ASR | undefended ASR | ACR clean (joint) | ACR clean (paper) | sigma train min | sigma test median |"
    sep = "|---|---:|---:|---:|---:|---:|---:|---:|"
    rows = []
    for label, s in summaries:
        m = s["metrics"]
        acr = m["clean"]["acr"]
        rows.append(
            f"| {label} | {m['clean_accuracy']:.3f} | {m['asr']:.3f} | {m.get('undefended_asr') or float('nan'):.3f} "
            f"| {acr['joint']:.4f} | {acr['paper']:.4f} | {s['sigma']['train_min']:.3f} "
            f"| {s['sigma']['test_clean']['median']:.3f} |")
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
            parts += [f"Certified accuracy, `{split}` test set:", "", table(summaries, split), ""]
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
