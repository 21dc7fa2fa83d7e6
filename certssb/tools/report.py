"""Collect finished runs and sweeps into one table and overlay plots.

    python -m certssb.tools.report <sweep or run dirs...> [--out DIR] [--split clean|triggered]
                             [--variant joint] [--group-by PARAM]
    python -m certssb.tools.report --wandb ENTITY/PROJECT [--group G] [--out DIR] ...

With ``--wandb`` the runs come from W&B's public API (their summary scalars and config, see
:mod:`certssb.tools.report_wandb`) and the same files are written (default ``--out ./report``).

A *run dir* is any directory holding Hydra's ``.hydra/`` folder (``overrides.yaml``,
``config.yaml``) and, once the pipeline finished, ``summary.json``. Sweep dirs (numbered job
subdirs plus ``multirun.yaml``) and any parent directory are searched recursively.

Writes into ``--out`` (default: the single input dir, or ``./report`` for several inputs):

- ``report.csv`` / ``report.md``: one row per complete run: ``run_dir``, ``status``, ``method``,
  ``seed``, ``n_members``, the swept parameters (the union of the runs' override keys; a run
  without that override gets the value from its ``.hydra/config.yaml`` when it is a plain value),
  ``ca@<r>`` = certified accuracy at each grid radius for ``--split``/``--variant`` (default the
  sound ``joint``; ``paper`` is a test-time/evasion certificate), ``pc@<k>`` = certified accuracy
  against ``k`` poisoned training samples (``curves.<split>.poison_count``; sound variants only),
  then ``accuracy``,
  ``certified_ratio``, ``acr`` (of that split and variant; the scalar ``acr`` in summary.json is the
  sound joint one), ``covered_exact`` (share of inputs whose sound certificate covers the realised
  attack by the exact ellipsoid test), ``clean_accuracy``, ``asr``, ``undefended_clean_accuracy``,
  ``undefended_asr``, ``attack_joint_l2``, ``sigma_s`` (choosing the sigmas: surrogate + SGA),
  ``train_s`` (training the N members), ``total_s`` (from ``summary.json`` ``timings``).
- ``seeds.csv`` and a "Mean over seeds" section of ``report.md``: runs that differ only in
  ``seed`` averaged (mean and sample standard deviation of the ACR, ``ca@<r>``, ``pc@<k>`` and the
  timings; see :mod:`certssb.tools.seeds`).
- ``missing.csv`` and a "Missing or failed" section of ``report.md``: runs without
  ``summary.json``, with an unreadable one, or whose status is not ``complete`` (never fatal).
- ``curves_<split>_<variant>.png``: certified accuracy vs radius, one line per run; colour by the
  ``--group-by`` parameter (default: the first swept parameter that varies), line style by run
  within a group.

Exit status: 0 on success, 2 (with one ``error: ...`` line on stderr) when no run is found or an
argument is wrong.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd
import yaml

from certssb.errors import CertSSBError
from certssb.plots import variant_label
from certssb.tools.seeds import aggregate_over_seeds, mean_std_cell

__all__ = ["collect_runs", "find_run_dirs", "parse_overrides", "write_report", "main"]

SPLITS = ("clean", "triggered", "triggered_all")
_SKIP_DIRS = {".hydra", ".submitit", "wandb", "__pycache__", "checkpoints", ".git"}
BASE_COLUMNS = ["run_dir", "status", "method", "seed", "n_members"]
METRIC_COLUMNS = [
    "accuracy",
    "certified_ratio",
    "acr",
    "covered_exact",
    "clean_accuracy",
    "asr",
    "undefended_clean_accuracy",
    "undefended_asr",
    "attack_joint_l2",
    "sigma_s",
    "train_s",
    "total_s",
]


# --------------------------------------------------------------------------- discovery
def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def find_run_dirs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Every directory with a ``.hydra/`` subfolder at or below ``paths`` (naturally sorted)."""
    found: list[Path] = []
    for p in paths:
        root = Path(p)
        if not root.exists():
            raise CertSSBError(f"{root} does not exist; pass sweep or run directories")
        if not root.is_dir():
            raise CertSSBError(f"{root} is not a directory; pass sweep or run directories")
        for dirpath, dirnames, _ in os.walk(root):
            here = Path(dirpath)
            if (here / ".hydra").is_dir():
                found.append(here)
            dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
    unique = {d.resolve(): d for d in found}
    return sorted(unique.values(), key=_natural_key)


def _sweep_job_dirs_without_hydra(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Numbered job subdirs of sweep dirs (``multirun.yaml``) that Hydra never set up."""
    out: list[Path] = []
    for p in paths:
        for multirun in Path(p).rglob("multirun.yaml"):
            if any(part in _SKIP_DIRS for part in multirun.parts):
                continue
            for sub in multirun.parent.iterdir():
                if sub.is_dir() and sub.name.isdigit() and not (sub / ".hydra").is_dir():
                    if not any((d / ".hydra").is_dir() for d in sub.rglob("*") if d.is_dir()):
                        out.append(sub)
    return sorted(set(out), key=_natural_key)


# --------------------------------------------------------------------------- overrides
def _parse_value(text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if value is None and text.strip().lower() not in ("null", "~", ""):
        return text
    if isinstance(value, (list, dict)):
        return text  # keep lists/dicts readable and hashable
    return value


def parse_overrides(lines: Sequence[str]) -> dict[str, Any]:
    """``["+a.b=1", "model=mlp", "~x"]`` -> ``{"a.b": 1, "model": "mlp", "x": "<deleted>"}``."""
    out: dict[str, Any] = {}
    for line in lines or []:
        line = str(line).strip()
        if not line:
            continue
        if line.startswith("~"):
            key = line[1:].split("=", 1)[0]
            out[key] = "<deleted>"
            continue
        key, sep, value = line.partition("=")
        key = key.lstrip("+")
        if not sep:
            continue
        out[key] = _parse_value(value)
    return out


def _read_yaml(path: Path) -> Any:
    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except (OSError, yaml.YAMLError):
        return None


def _config_value(config: Any, key: str) -> Any:
    """A plain value at dotted ``key`` of a loaded config.yaml, else None."""
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, (dict, list)):
        if isinstance(node, dict) and isinstance(node.get("name"), (str, int, float)):
            return node["name"]  # a config group's chosen option usually carries its name
        return None
    if isinstance(node, str) and "${" in node:
        return None
    return node


# --------------------------------------------------------------------------- collection
def _radius_label(r: float) -> str:
    return f"ca@{float(r):g}"


def _curve(summary: dict, split: str, variant: str) -> tuple[list[float], list[float]] | None:
    curve = (summary.get("curves") or {}).get(split) or {}
    values = (curve.get("certified_accuracy") or {}).get(variant)
    radii = curve.get("radii")
    if values is None or radii is None or len(values) != len(radii):
        return None
    return [float(r) for r in radii], [float("nan") if v is None else float(v) for v in values]


def _acr(split_metrics: dict, variant: str) -> Any:
    """ACR of ``variant``: ``acr`` is the sound (joint) one, the others are in ``acr_by_variant``
    (older summaries held a dict of variants under ``acr``)."""
    acr = split_metrics.get("acr")
    if isinstance(acr, dict):
        return acr.get(variant)
    by_variant = split_metrics.get("acr_by_variant")
    if isinstance(by_variant, dict) and variant in by_variant:
        return by_variant[variant]
    if isinstance(acr, (int, float)) and variant == "joint":
        return acr
    return None


def _count_label(k: int) -> str:
    return f"pc@{int(k)}"


def _poison_curve(summary: dict, split: str, variant: str) -> tuple[list[int], list[float]] | None:
    """Certified accuracy against k poisoned samples (``curves.<split>.poison_count``) for the
    sound variants (``joint``, ``joint_memory``); None for the others or when absent."""
    pc = ((summary.get("curves") or {}).get(split) or {}).get("poison_count") or {}
    counts = pc.get("counts")
    values = (pc.get("certified_accuracy") or {}).get(variant)
    if counts is None or values is None or len(values) != len(counts):
        return None
    return [int(k) for k in counts], [float("nan") if v is None else float(v) for v in values]


def _covered_exact(split_metrics: dict) -> Any:
    """Share of inputs whose sound certificate covers the realised attack (exact ellipsoid test;
    the storage-update memory's final certificate when the memory ran)."""
    covered = split_metrics.get("covered_fraction")
    if not isinstance(covered, dict):
        return None
    return covered.get("exact_memory", covered.get("exact"))


def _read_run(run_dir: Path) -> tuple[dict | None, str | None, str]:
    """(summary, reason-if-missing-or-failed, status)."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return None, "no summary.json", "missing"
    try:
        with open(path) as f:
            summary = json.load(f)
    except (OSError, ValueError) as err:
        return None, f"unreadable summary.json ({type(err).__name__}: {err})".splitlines()[0], "unreadable"
    if not isinstance(summary, dict):
        return None, "summary.json is not a JSON object", "unreadable"
    status = str(summary.get("status", "unknown"))
    if status != "complete":
        return summary, f"status={status}", status
    return summary, None, status


def collect_runs(
    paths: Iterable[str | os.PathLike], split: str = "clean", variant: str = "joint"
) -> tuple[pd.DataFrame, list[dict]]:
    """Find the runs under ``paths``; one DataFrame row per complete run, plus the others.

    Returns ``(df, missing)``: ``df`` has the columns described in the module docstring (and the
    attribute ``df.attrs`` = ``{"params": [...swept keys...], "radii": [...], "curves": {...}}``);
    ``missing`` is a list of dicts ``{"run_dir", "status", "reason", **overrides}`` for run dirs
    without ``summary.json``, with an unreadable one or a status other than ``complete``.
    Raises :class:`CertSSBError` when no run dir (and no sweep job dir) is found.
    """
    paths = list(paths)
    if not paths:
        raise CertSSBError("no directories given; pass sweep or run directories")
    run_dirs = find_run_dirs(paths)
    orphan_jobs = _sweep_job_dirs_without_hydra(paths)
    if not run_dirs and not orphan_jobs:
        where = ", ".join(str(p) for p in paths)
        raise CertSSBError(f"no runs found under {where} (looked for directories containing .hydra/)")

    records: list[dict] = []
    for run_dir in run_dirs:
        overrides = parse_overrides(_read_yaml(run_dir / ".hydra" / "overrides.yaml") or [])
        summary, reason, status = _read_run(run_dir)
        records.append(
            {"run_dir": run_dir, "overrides": overrides, "summary": summary, "reason": reason, "status": status}
        )
    for job in orphan_jobs:
        records.append({"run_dir": job, "overrides": {}, "summary": None, "status": "missing",
                        "reason": "job never started (no .hydra/)", "orphan": True})
    return _table(records, split, variant)


def collect_wandb_runs(api, path: str, group: str | None, split: str = "clean",
                       variant: str = "joint") -> tuple[pd.DataFrame, list[dict]]:
    """Like :func:`collect_runs`, for the W&B runs of ``path`` (``ENTITY/PROJECT``) in ``group``.

    ``api`` is a ``wandb.Api()`` (or an object with the same ``runs(path, filters=...)``).
    """
    from certssb.tools.report_wandb import wandb_records

    df, missing = _table(wandb_records(api, path, group), split, variant)
    df.attrs["source"] = "wandb"
    return df, missing


def _table(records: list[dict], split: str, variant: str) -> tuple[pd.DataFrame, list[dict]]:
    """Rows of complete runs and the missing list from records ``{run_dir, overrides, summary,
    reason, status}`` (+ optional ``config``: the run's composed config as a dict)."""
    params: list[str] = []
    for rec in records:
        if rec.get("orphan"):
            continue
        for key in rec["overrides"]:
            if key not in params:
                params.append(key)

    rows: list[dict] = []
    missing: list[dict] = []
    curves: dict[str, tuple[list[float], list[float]]] = {}
    all_radii: set[float] = set()
    all_counts: set[int] = set()
    for rec in records:
        run_dir, overrides, summary = rec["run_dir"], rec["overrides"], rec["summary"]
        config = None
        values: dict[str, Any] = {}
        for key in params:
            if key in overrides:
                values[key] = overrides[key]
            else:
                if config is None:
                    config = rec.get("config")
                    if config is None:
                        config = _read_yaml(Path(run_dir) / ".hydra" / "config.yaml") or {}
                values[key] = _config_value(config, key)
        if rec.get("orphan"):
            missing.append({"run_dir": str(run_dir), "status": rec["status"], "reason": rec["reason"]})
            continue
        if rec["reason"] is not None:
            missing.append({"run_dir": str(run_dir), "status": rec["status"], "reason": rec["reason"], **values})
            continue
        metrics = summary.get("metrics") or {}
        split_metrics = metrics.get(split) or {}
        row: dict[str, Any] = {
            "run_dir": str(run_dir),
            "status": rec["status"],
            "method": summary.get("method"),
            "seed": summary.get("seed"),
            "n_members": summary.get("n_members"),
            **values,
        }
        curve = _curve(summary, split, variant)
        if curve is not None:
            curves[str(run_dir)] = curve
            for r, v in zip(*curve):
                all_radii.add(r)
                row[_radius_label(r)] = v
        poison = _poison_curve(summary, split, variant)
        if poison is not None:
            for k, v in zip(*poison):
                all_counts.add(k)
                row[_count_label(k)] = v
        timings = summary.get("timings") or {}
        row.update(
            accuracy=split_metrics.get("accuracy"),
            certified_ratio=split_metrics.get("certified_ratio"),
            acr=_acr(split_metrics, variant),
            covered_exact=_covered_exact(split_metrics),
            clean_accuracy=metrics.get("clean_accuracy"),
            asr=metrics.get("asr"),
            undefended_clean_accuracy=metrics.get("undefended_clean_accuracy"),
            undefended_asr=metrics.get("undefended_asr"),
            attack_joint_l2=metrics.get("attack_joint_l2"),
            sigma_s=timings.get("sigma_s"),
            train_s=timings.get("train_s"),
            total_s=timings.get("total_s"),
        )
        rows.append(row)

    radii = sorted(all_radii)
    base = [c for c in BASE_COLUMNS if c not in params]
    counts = sorted(all_counts)
    columns = base + params + [_radius_label(r) for r in radii] + [_count_label(k) for k in counts] + METRIC_COLUMNS
    df = pd.DataFrame(rows, columns=columns)
    for col in ("seed", "n_members"):
        if col not in params and df[col].notna().all() and len(df):
            df[col] = df[col].astype("int64")
    df.attrs.update(params=params, radii=radii, counts=counts, curves=curves, split=split, variant=variant)
    return df, missing


# --------------------------------------------------------------------------- output
def _varying(df: pd.DataFrame, params: Sequence[str], missing: Sequence[dict] = ()) -> list[str]:
    out = []
    for key in params:
        vals = {json.dumps(v, default=str) for v in df[key].tolist()} if key in df else set()
        vals |= {json.dumps(m.get(key), default=str) for m in missing}
        if len(vals) > 1:
            out.append(key)
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def _md_table(records: list[dict], columns: Sequence[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for rec in records:
        lines.append("| " + " | ".join(_fmt(rec.get(c)) for c in columns) + " |")
    return lines


def _display_base(paths: Sequence[str]) -> Path | None:
    """The deepest directory above all ``paths`` (their common parent), None if there is none."""
    if not paths:
        return None
    try:
        common = Path(os.path.commonpath([os.path.abspath(p) for p in paths]))
    except ValueError:  # pragma: no cover - different drives on Windows
        return None
    if len(paths) == 1:
        common = common.parent
    return common


def _relative(path: str, base: Path | None) -> str:
    if base is None:
        return path
    try:
        return os.path.relpath(os.path.abspath(path), base)
    except ValueError:  # pragma: no cover - other drive on Windows
        return path


def plot_curves(df: pd.DataFrame, path: Path, group_by: str | None) -> bool:
    """Overlay certified-accuracy curves (one line per run); False when there is nothing to plot."""
    curves = df.attrs.get("curves", {})
    runs = [r for r in df["run_dir"].tolist() if r in curves]
    if not runs:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = df.attrs.get("params", [])
    varying = _varying(df, params)
    by_run = df.set_index("run_dir")
    groups: list[str] = []
    for run in runs:
        g = _fmt(by_run.at[run, group_by]) if group_by else ""
        if g not in groups:
            groups.append(g)
    colours = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20")
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "v", "D", "x", "*", "+"]
    seen_in_group: dict[str, int] = {}
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for run in runs:
        radii, values = curves[run]
        g = _fmt(by_run.at[run, group_by]) if group_by else ""
        k = seen_in_group.get(g, 0)
        seen_in_group[g] = k + 1
        label_keys = [group_by] + [v for v in varying if v != group_by] if group_by else varying
        label = ", ".join(f"{key}={_fmt(by_run.at[run, key])}" for key in label_keys) or Path(run).name
        ax.plot(
            radii,
            values,
            linestyle=styles[k % len(styles)],
            marker=markers[(k // len(styles)) % len(markers)],
            markersize=3,
            color=colours(groups.index(g) % colours.N),
            label=label,
        )
    split, variant = df.attrs.get("split"), df.attrs.get("variant")
    ax.set_xlabel("radius (L2)")
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{split} test set, {variant_label(variant)}" + (f" (colour: {group_by})" if group_by else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def write_report(
    df: pd.DataFrame,
    missing: list[dict],
    out: Path,
    inputs: Sequence[str],
    group_by: str | None = None,
) -> dict[str, Path]:
    """Write report.csv, missing.csv, report.md and the curve plot into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    params = df.attrs.get("params", [])
    split, variant = df.attrs.get("split"), df.attrs.get("variant")
    if group_by is not None and group_by not in params:
        raise CertSSBError(
            f"--group-by {group_by!r} is not a swept parameter; choose one of: {', '.join(params) or '(none)'}"
        )
    varying = _varying(df, params, missing)
    if group_by is None:
        group_by = next((p for p in varying if p in df and df[p].nunique(dropna=False) > 1), None)

    files = {"csv": out / "report.csv", "missing": out / "missing.csv", "md": out / "report.md"}
    df.to_csv(files["csv"], index=False)
    miss_cols = ["run_dir", "status", "reason"] + [p for p in params]
    pd.DataFrame(missing, columns=miss_cols).to_csv(files["missing"], index=False)

    png = out / f"curves_{split}_{variant}.png"
    plotted = plot_curves(df, png, group_by)
    if plotted:
        files["png"] = png

    radius_cols = [c for c in df.columns if c.startswith("ca@")]
    base = None if df.attrs.get("source") == "wandb" else _display_base(
        df["run_dir"].tolist() + [m["run_dir"] for m in missing])
    lines = [
        "# certssb report",
        "",
        f"- inputs: {', '.join(f'`{p}`' for p in inputs)}",
        f"- split: `{split}`, radius variant: `{variant}` ({variant_label(variant)})",
        f"- complete runs: {len(df)}; missing or failed: {len(missing)}"
        + (f" (run dirs below `{base}`)" if base is not None else ""),
        f"- swept parameters: {', '.join(f'`{p}`' for p in params) or '(none)'}"
        + (f"; varying: {', '.join(f'`{p}`' for p in varying)}" if varying else ""),
    ]
    fixed = [p for p in params if p not in varying and p in df]
    if fixed and len(df):
        lines.append(
            "- same in every run (not in the table below): "
            + ", ".join(f"`{p}={_fmt(df[p].iloc[0])}`" for p in fixed)
        )
    if group_by:
        lines.append(f"- plot grouped by: `{group_by}`")
    lines += ["", "## Results", ""]
    if len(df):
        no_curve = [r for r in df["run_dir"] if r not in df.attrs.get("curves", {})]
        shown = ["run_dir", "method"] + varying + radius_cols + [
            "acr",
            "covered_exact",
            "clean_accuracy",
            "asr",
            "undefended_asr",
            "total_s",
        ]
        shown = list(dict.fromkeys(shown))
        recs = df.to_dict("records")
        for rec in recs:
            rec["run_dir"] = _relative(rec["run_dir"], base)
        lines += _md_table(recs, shown)
        if no_curve:
            lines += [
                "",
                f"{len(no_curve)} run(s) have no `{split}`/`{variant}` curve in summary.json: "
                + ", ".join(f"`{_relative(r, base)}`" for r in no_curve),
            ]
        lines += ["", "Full table: `report.csv` (all metrics, full precision)."]
    else:
        lines.append("No complete run.")
    if plotted:
        lines += ["", "## Certified accuracy", "", f"![certified accuracy]({png.name})"]
    if len(df):
        seeds = aggregate_over_seeds(df, [p for p in varying if p != "seed"])
        files["seeds"] = out / "seeds.csv"
        seeds.to_csv(files["seeds"], index=False)
        lines += ["", "## Mean over seeds", ""] + _seed_tables(seeds, [p for p in varying if p != "seed"])
    lines += ["", "## Missing or failed", ""]
    if missing:
        recs = [dict(m, run_dir=_relative(m["run_dir"], base)) for m in missing]
        lines += _md_table(recs, ["run_dir", "status", "reason"] + [p for p in varying])
    else:
        lines.append("None.")
    files["md"].write_text("\n".join(lines) + "\n")
    return files


def _seed_tables(seeds: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """Markdown: mean ± std over seeds of the ACR and ca@<r>, pc@<k> and the timings."""
    head = list(dict.fromkeys(list(keys) + ["method", "n_seeds"]))

    def table(metrics: list[str], labels: list[str]) -> list[str]:
        recs = []
        for rec in seeds.to_dict("records"):
            out = {c: rec.get(c) for c in head}
            for m, label in zip(metrics, labels):
                out[label] = mean_std_cell(rec.get(f"{m}_mean"), rec.get(f"{m}_std"))
            recs.append(out)
        return _md_table(recs, head + labels)

    cols = [c[: -len("_mean")] for c in seeds.columns if c.endswith("_mean")]
    ca = [c for c in cols if c.startswith("ca@")]
    pc = [c for c in cols if c.startswith("pc@")]
    lines = ["Mean ± sample standard deviation over the seeds (`seeds.csv` has full precision).", ""]
    lines += table(["acr"] + ca, ["acr"] + [c.replace("ca@", "r=") for c in ca])
    if pc:
        lines += ["", "Certified accuracy against k poisoned training samples (`pc@k`):", ""]
        lines += table(pc, [c.replace("pc@", "k=") for c in pc])
    timing = [m for m in ("sigma_s", "train_s", "total_s") if m in cols]
    if timing:
        lines += ["", "Time per run in seconds (choosing the sigmas, training the members, total):", ""]
        lines += table(timing, timing)
    return lines


# --------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m certssb.tools.report",
        description=("Tabulate and plot certssb runs and sweeps (summary.json + .hydra/overrides.yaml): one row "
                     "per complete run with its swept parameters, certified accuracy at each radius and against k "
                     "poisoned samples, the ACR and timings; means over seeds; missing or failed runs listed; "
                     "writes report.md, report.csv, seeds.csv, missing.csv and curves_<split>_<variant>.png. "
                     "Example: python -m certssb.tools.report multirun/digits_offline"),
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


def wandb_api():
    """``wandb.Api()`` (reads ``WANDB_API_KEY`` / ``~/.netrc``); replaced by a fake in tests."""
    import wandb

    try:
        return wandb.Api()
    except Exception as exc:  # no key, no network
        raise CertSSBError(f"cannot open the W&B API ({' '.join(str(exc).split())[:200]}): run wandb login") from exc


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.wandb is not None:
            if args.paths:
                raise CertSSBError("pass either directories or --wandb ENTITY/PROJECT, not both")
            df, missing = collect_wandb_runs(wandb_api(), args.wandb, args.group, split=args.split,
                                             variant=args.variant)
            inputs = [f"wandb:{args.wandb}" + (f" group {args.group}" if args.group else "")]
            out = Path(args.out) if args.out else Path("report")
        else:
            if args.group is not None:
                raise CertSSBError("--group needs --wandb ENTITY/PROJECT")
            if not args.paths:
                raise CertSSBError("no directories given; pass sweep or run directories, or --wandb ENTITY/PROJECT")
            df, missing = collect_runs(args.paths, split=args.split, variant=args.variant)
            inputs = list(args.paths)
            out = Path(args.out) if args.out else (Path(args.paths[0]) if len(args.paths) == 1 else Path("report"))
        files = write_report(df, missing, out, inputs, group_by=args.group_by)
    except CertSSBError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if len(df) and not df.attrs["curves"]:
        print(f"warning: no run has a {args.split}/{args.variant} curve", file=sys.stderr)
    print(f"report: {len(df)} complete run(s), {len(missing)} missing or failed -> {files['md']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
