"""Writing the report: ``report.csv``, ``missing.csv``, ``seeds.csv``, ``report.md`` and the figures
(the radius overlay of the Gaussian runs, the k-axis overlay of every family)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from certssb.errors import CertSSBError
from certssb.plots import variant_label
from certssb.tools.one_axis import ONE_AXIS_COLUMNS
from certssb.tools.one_axis_plot import KCurve, overlay_any_count
from certssb.tools.seeds import aggregate_over_seeds, mean_std_cell

from .radius_plot import plot_curves
from .values import display_base, fmt, md_table, relative, varying

__all__ = ["write_report"]

RESULT_COLUMNS = ["acr", "covered_exact", "clean_accuracy", "asr", "undefended_asr", "total_s"]
ONE_AXIS_METRICS = [c for c in ONE_AXIS_COLUMNS if c != "family"]


def _header(df: pd.DataFrame, missing: list[dict], inputs: Sequence[str], keys: list[str], base) -> list[str]:
    params = df.attrs.get("params", [])
    split, variant = df.attrs.get("split"), df.attrs.get("variant")
    lines = [
        "# certssb report",
        "",
        f"- inputs: {', '.join(f'`{p}`' for p in inputs)}",
        f"- split: `{split}`, radius variant: `{variant}` ({variant_label(variant)})",
        f"- complete runs: {len(df)}; missing or failed: {len(missing)}"
        + (f" (run dirs below `{base}`)" if base is not None else ""),
        f"- swept parameters: {', '.join(f'`{p}`' for p in params) or '(none)'}"
        + (f"; varying: {', '.join(f'`{p}`' for p in keys)}" if keys else ""),
    ]
    fixed = [p for p in params if p not in keys and p in df]
    if fixed and len(df):
        lines.append("- same in every run (not in the table below): "
                     + ", ".join(f"`{p}={fmt(df[p].iloc[0])}`" for p in fixed))
    return lines


def _results(df: pd.DataFrame, keys: list[str], base, png: Path | None) -> list[str]:
    """The radius table (every run; count-family runs have no radius columns) and its figure."""
    split, variant = df.attrs.get("split"), df.attrs.get("variant")
    radius_cols = [c for c in df.columns if c.startswith("ca@")]
    shown = list(dict.fromkeys(["run_dir", "method"] + keys + radius_cols + RESULT_COLUMNS))
    recs = [dict(rec, run_dir=relative(rec["run_dir"], base)) for rec in df.to_dict("records")]
    lines = md_table(recs, shown)
    curves = df.attrs.get("curves", {})
    gaussian = df["family"] != "count"
    no_curve = [r for r in df.loc[gaussian, "run_dir"] if r not in curves]
    if no_curve:
        lines += ["", f"{len(no_curve)} run(s) have no `{split}`/`{variant}` curve in summary.json: "
                  + ", ".join(f"`{relative(r, base)}`" for r in no_curve)]
    if (~gaussian).any():
        lines += ["", f"{int((~gaussian).sum())} count-family run(s) certify no L2 radius (their certificate is a "
                  "number of changed training samples): see the k axis below."]
    lines += ["", "Full table: `report.csv` (all metrics, full precision)."]
    if png is not None:
        lines += ["", "## Certified accuracy", "", f"![certified accuracy]({png.name})"]
    return lines


def _one_axis(df: pd.DataFrame, keys: list[str], base, png: Path | None) -> list[str]:
    """Every run of either family on the shared axis (docs/METHOD.md 8.3), and its figure."""
    changed = sorted({int(v) for v in df.attrs.get("changed", {}).values() if v is not None})
    shown = list(dict.fromkeys(["run_dir", "method"] + keys + ONE_AXIS_COLUMNS))
    recs = [dict(rec, run_dir=relative(rec["run_dir"], base)) for rec in df.to_dict("records")]
    lines = ["", "## Every family on one axis", "",
             "`realised_attack_certified_<set>`: share of the set's inputs predicted correctly and certified against "
             "the attack as run (" + (f"{', '.join(map(str, changed))} training samples changed" if changed else
                                      "its changed training samples") + "); `any_count_median`: median certified "
             f"number of training samples changed arbitrarily (`{df.attrs.get('split')}` set, correct inputs); "
             "`n_members`: models trained; `train_s`: their training seconds.", ""]
    lines += md_table(recs, shown)
    if png is not None:
        lines += ["", f"![certified accuracy against any k changed training samples]({png.name})"]
    return lines


def _any_count_figure(seeds: pd.DataFrame, keys: list[str], df: pd.DataFrame, path: Path) -> bool:
    """One curve per group of seeds (mean over the seeds) on the k axis."""
    counts = df.attrs.get("any_counts", [])
    curves = []
    for rec in seeds.to_dict("records"):
        method = str(rec.get("method") or "")
        shown = [f"{k}={fmt(rec[k])}" for k in keys  # a key the run's option lacks: left out; the method once
                 if fmt(rec[k]) and not (k == "method" and fmt(rec[k]) == method)]
        label = method + (f" ({', '.join(shown)})" if shown else "")
        values = [rec.get(f"ac@{k}_mean") for k in counts]
        points = [(k, v) for k, v in zip(counts, values) if v is not None and v == v]
        if points:
            curves.append(KCurve(label.strip(), [k for k, _ in points], [v for _, v in points],
                                 str(rec.get("family") or "gaussian").split(",")[0]))
    changed = [v for v in df.attrs.get("changed", {}).values() if v is not None]
    title = f"{df.attrs.get('split')} test set: every family on the k axis (mean over seeds)"
    return bool(overlay_any_count(curves, path, title, changed))


def _seed_tables(seeds: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """Markdown: mean ± std over seeds of the ACR and ca@<r>, pc@<k>, the one-axis readings and
    ac@<k>, and the timings."""
    head = list(dict.fromkeys(list(keys) + ["method", "n_seeds"]))

    def table(metrics: list[str], labels: list[str], extra: Sequence[str] = ()) -> list[str]:
        """The groups with at least one value (e.g. no count-family group in the radius table)."""
        recs = []
        for rec in seeds.to_dict("records"):
            out = {c: rec.get(c) for c in list(head) + list(extra)}
            cells = {label: mean_std_cell(rec.get(f"{m}_mean"), rec.get(f"{m}_std"))
                     for m, label in zip(metrics, labels)}
            if any(cells.values()):
                recs.append({**out, **cells})
        return md_table(recs, list(head) + list(extra) + labels) if recs else []

    cols = [c[: -len("_mean")] for c in seeds.columns if c.endswith("_mean")]
    ca = [c for c in cols if c.startswith("ca@")]
    pc = [c for c in cols if c.startswith("pc@")]
    ac = [c for c in cols if c.startswith("ac@")]
    one_axis = [m for m in ONE_AXIS_METRICS if m in cols]
    timing = [m for m in ("sigma_s", "train_s", "total_s") if m in cols]
    sections = [("ACR and certified accuracy at each radius (Gaussian family):", table(
                    ["acr"] + ca, ["acr"] + [c.replace("ca@", "r=") for c in ca])),
                ("Certified accuracy against k poisoned training samples, labels unchanged (`pc@k`):",
                 table(pc, [c.replace("pc@", "k=") for c in pc]) if pc else []),
                ("Every family on one axis:", table(one_axis, one_axis, extra=["family"]) if one_axis else []),
                ("Certified accuracy against any k changed training samples (`ac@k`):",
                 table(ac, [c.replace("ac@", "k=") for c in ac]) if ac else []),
                ("Time per run in seconds (choosing the sigmas, training the members, total):",
                 table(timing, timing) if timing else [])]
    lines = ["Mean ± sample standard deviation over the seeds (`seeds.csv` has full precision)."]
    for title, rows in sections:
        if rows:
            lines += ["", title, ""] + rows
    return lines


def write_report(df: pd.DataFrame, missing: list[dict], out: Path, inputs: Sequence[str],
                 group_by: str | None = None) -> dict[str, Path]:
    """Write report.csv, missing.csv, seeds.csv, report.md and the figures into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    params = df.attrs.get("params", [])
    split, variant = df.attrs.get("split"), df.attrs.get("variant")
    if group_by is not None and group_by not in params:
        raise CertSSBError(
            f"--group-by {group_by!r} is not a swept parameter; choose one of: {', '.join(params) or '(none)'}")
    keys = varying(df, params, missing)
    if group_by is None:
        group_by = next((p for p in keys if p in df and df[p].nunique(dropna=False) > 1), None)
    files = {"csv": out / "report.csv", "missing": out / "missing.csv", "md": out / "report.md"}
    df.to_csv(files["csv"], index=False)
    pd.DataFrame(missing, columns=["run_dir", "status", "reason"] + list(params)).to_csv(files["missing"], index=False)
    png = out / f"curves_{split}_{variant}.png"
    if plot_curves(df, png, group_by):
        files["png"] = png
    base = None if df.attrs.get("source") == "wandb" else display_base(
        df["run_dir"].tolist() + [m["run_dir"] for m in missing])
    lines = _header(df, missing, inputs, keys, base)
    lines += [f"- plot grouped by: `{group_by}`"] if group_by else []
    lines += ["", "## Results", ""]
    if len(df):
        seed_keys = [p for p in keys if p != "seed"]
        seeds = aggregate_over_seeds(df, seed_keys)
        any_png = out / f"any_count_{split}.png"
        if _any_count_figure(seeds, seed_keys, df, any_png):
            files["any_count_png"] = any_png
        lines += _results(df, keys, base, files.get("png"))
        lines += _one_axis(df, keys, base, files.get("any_count_png"))
        files["seeds"] = out / "seeds.csv"
        seeds.to_csv(files["seeds"], index=False)
        lines += ["", "## Mean over seeds", ""] + _seed_tables(seeds, seed_keys)
    else:
        lines.append("No complete run.")
    lines += ["", "## Missing or failed", ""]
    if missing:
        recs = [dict(m, run_dir=relative(m["run_dir"], base)) for m in missing]
        lines += md_table(recs, ["run_dir", "status", "reason"] + keys)
    else:
        lines.append("None.")
    files["md"].write_text("\n".join(lines) + "\n")
    return files
