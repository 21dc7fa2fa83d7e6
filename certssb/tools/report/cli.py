"""``python -m certssb.tools.report``: the options, reading the runs (folders or W&B), writing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from certssb.errors import CertSSBError

from . import wandb_runs
from .local_runs import collect_runs
from .markdown import write_report

__all__ = ["SPLITS", "build_parser", "main"]

SPLITS = ("clean", "triggered", "triggered_all")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m certssb.tools.report",
        description=("Tabulate and plot certssb runs and sweeps of both families (summary.json + "
                     ".hydra/overrides.yaml): one row per complete run with its swept parameters, certified "
                     "accuracy at each radius (Gaussian family), against k poisoned samples and against any k "
                     "changed samples (every family), the realised attack certified, the median certified count, "
                     "the models trained, the ACR and timings; means over seeds; missing or failed runs listed; "
                     "writes report.md, report.csv, seeds.csv, missing.csv, curves_<split>_<variant>.png and "
                     "any_count_<split>.png. Example: python -m certssb.tools.report multirun/digits_offline"),
    )
    p.add_argument("paths", nargs="*", help="sweep dirs, run dirs or any parent directory")
    p.add_argument("--wandb", default=None, metavar="ENTITY/PROJECT",
                   help="read the runs from W&B (public API) instead of directories")
    p.add_argument("--group", default=None, help="with --wandb: only the runs of this W&B group")
    p.add_argument("--out", default=None, help="output dir (default: the input dir if one, else ./report)")
    p.add_argument("--split", default="clean", choices=SPLITS, help="test set of the curves/table (default clean)")
    p.add_argument("--variant", default="joint",
                   help="radius variant: joint (sound, default), joint_memory, paper (test-time only), paper_memory")
    p.add_argument("--group-by", default=None, help="swept parameter that sets the plot colours")
    return p


def _read(args: argparse.Namespace):
    """(table, missing, inputs, output folder) from the folders or W&B named on the command line."""
    if args.wandb is not None:
        if args.paths:
            raise CertSSBError("pass either directories or --wandb ENTITY/PROJECT, not both")
        df, missing = wandb_runs.collect_wandb_runs(wandb_runs.wandb_api(), args.wandb, args.group,
                                                    split=args.split, variant=args.variant)
        inputs = [f"wandb:{args.wandb}" + (f" group {args.group}" if args.group else "")]
        return df, missing, inputs, Path(args.out) if args.out else Path("report")
    if args.group is not None:
        raise CertSSBError("--group needs --wandb ENTITY/PROJECT")
    if not args.paths:
        raise CertSSBError("no directories given; pass sweep or run directories, or --wandb ENTITY/PROJECT")
    df, missing = collect_runs(args.paths, split=args.split, variant=args.variant)
    out = Path(args.out) if args.out else (Path(args.paths[0]) if len(args.paths) == 1 else Path("report"))
    return df, missing, list(args.paths), out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        df, missing, inputs, out = _read(args)
        files = write_report(df, missing, out, inputs, group_by=args.group_by)
    except CertSSBError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if len(df) and (df["family"] != "count").any() and not df.attrs["curves"]:
        print(f"warning: no run has a {args.split}/{args.variant} curve", file=sys.stderr)
    print(f"report: {len(df)} complete run(s), {len(missing)} missing or failed -> {files['md']}")
    return 0
