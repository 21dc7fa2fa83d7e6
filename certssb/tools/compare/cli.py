"""``python -m certssb.tools.compare``: read the runs, print the tables, warn, draw the k axis."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from certssb.errors import CertSSBError
from certssb.tools.one_axis import any_count_curve, attack_changed, family
from certssb.tools.one_axis_plot import KCurve, overlay_any_count

from .facts import labels, mismatch_warning
from .tables import any_count_table, gaussian, metrics_table, one_axis_table, poison_table, radius_table

__all__ = ["build_parser", "load", "main"]

SPLITS = ("clean", "triggered", "triggered_all")


def load(run_dir: Path) -> dict:
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        raise CertSSBError(f"{path} not found: pass run directories that hold a summary.json")
    summary = json.loads(path.read_text())
    if summary.get("status") != "complete":
        raise CertSSBError(f"{path} is not a complete run (status {summary.get('status')!r})")
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m certssb.tools.compare",
        description=("Put several runs of either family side by side as Markdown: the Gaussian runs' headline "
                     "metrics (the sound joint ACR first), every run on the axis both families share (clean "
                     "accuracy, realised attack certified on the clean and triggered sets, median certified any-k "
                     "count, models trained, training time), certified accuracy against the L2 radius per variant "
                     "(Gaussian runs), against k poisoned training samples and against any k changed samples. Each "
                     "run is labelled by the config values in which the runs differ; one warning line on stderr "
                     "when they differ in more than the method (certifier, N, alpha, dataset, attack, seed; between "
                     "families the expected differences are named in a note). Example: python -m "
                     "certssb.tools.compare multirun/compare_digits/sigma_optimiser=fixed "
                     "multirun/compare_digits/sigma_optimiser=sga"))
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="run folders, each holding a complete summary.json (and Hydra's .hydra/ where run "
                             "through certssb.run)")
    parser.add_argument("--split", default="clean,triggered",
                        help="comma-separated test sets for the curve tables: clean, triggered, triggered_all "
                             "(default clean,triggered)")
    parser.add_argument("--title", default="Certified accuracy", help="heading of the Markdown output")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE.md",
                        help="also write the Markdown to this file (it is always printed)")
    parser.add_argument("--figure", type=Path, default=None, metavar="FILE.png",
                        help="also draw every run on the k axis (certified accuracy against any k changed training "
                             "samples, the first --split) into this PNG")
    return parser


def _splits(text: str) -> list[str]:
    splits = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in splits if s not in SPLITS]
    if bad or not splits:
        raise CertSSBError(f"--split {text!r}: choose among {', '.join(SPLITS)} (comma-separated)")
    return splits


def _split_parts(summaries: list[tuple[str, dict]], split: str) -> list[str]:
    parts = []
    runs = gaussian(summaries)
    if runs:
        skipped = len(summaries) - len(runs)
        note = f" ({skipped} count-family run(s) left out: they certify no radius)" if skipped else ""
        parts += [f"Certified accuracy against L2 radius, `{split}` test set{note}:", "", radius_table(runs, split), ""]
        poison = poison_table(runs, split)
        if poison:
            parts += [f"Certified accuracy against k poisoned training samples (labels unchanged), `{split}` test "
                      "set:", "", poison, ""]
    any_k = any_count_table(summaries, split)
    if any_k:
        parts += [f"Certified accuracy against any k changed training samples (features and labels), `{split}` "
                  "test set:", "", any_k, ""]
    return parts


def markdown(summaries: list[tuple[str, dict]], splits: list[str], title: str) -> str:
    parts = [f"## {title}", ""]
    if gaussian(summaries):
        parts += [metrics_table(gaussian(summaries)), ""]
    changed = sorted({c for c in (attack_changed(s) for _, s in summaries) if c is not None})
    parts += ["Every family on one axis" + (f" (the attack changed {', '.join(map(str, changed))} training samples)"
                                            if changed else "") + ":", "", one_axis_table(summaries), ""]
    for split in splits:
        parts += _split_parts(summaries, split)
    return "\n".join(parts)


def figure(summaries: list[tuple[str, dict]], split: str, path: Path) -> bool:
    curves = [KCurve(label, *curve, family=family(s)) for label, s in summaries
              if (curve := any_count_curve(s, split)) is not None]
    changed = [c for c in (attack_changed(s) for _, s in summaries) if c is not None]
    return bool(overlay_any_count(curves, path, f"{split} test set: every family on the k axis", changed))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        splits = _splits(args.split)
        runs = [(p, load(p)) for p in args.runs]
        summaries = list(zip(labels(runs), (s for _, s in runs)))
        warning = mismatch_warning(runs) if len(runs) > 1 else None
        text = markdown(summaries, splits, args.title)
        if args.figure is not None and not figure(summaries, splits[0], args.figure):
            raise CertSSBError(f"no run has a curves.{splits[0]}.any_count curve to draw into {args.figure}")
    except (CertSSBError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if warning:
        print(warning, file=sys.stderr)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0
