"""Reading runs from W&B (public API) as the report's records: the summary rebuilt from the
logged scalar names (:mod:`certssb.logger.flatten`), the swept parameters from the run's config.

A W&B run holds ``summary`` keys ``metrics/<path>``, ``ca/<split>/<variant>/r<radius>``,
``ca_any/<split>/k<k>``, ``timings/<name>`` and ``n_members``, and ``config`` = the composed config
plus ``overrides`` (the job's command-line overrides) and ``method``. The family is the config's
``family`` where logged, else ``gaussian`` for a run with radius curves and ``count`` for one with
the k axis alone. Runs whose ``state`` is not ``finished`` go to the missing list.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from certssb.errors import CertSSBError

from .overrides import parse_overrides
from .table import build_table

__all__ = ["collect_wandb_runs", "parse_radius_key", "summary_from_scalars", "wandb_api", "wandb_records"]

_RADIUS = re.compile(r"^r(?P<value>[0-9e_]+)$")
_COUNT = re.compile(r"^k(?P<value>[0-9]+)$")


def parse_radius_key(key: str) -> float | None:
    """``r0_5`` -> 0.5, ``r1`` -> 1.0, ``r1e_05`` -> 1e-05 (the inverse of ``radius_key``); else None."""
    match = _RADIUS.match(key)
    if not match:
        return None
    text = match.group("value").replace("e_", "e-").replace("_", ".")
    try:
        return float(text)
    except ValueError:
        return None


def _set(tree: dict, path: list[str], value: Any) -> None:
    for part in path[:-1]:
        node = tree.get(part)
        if not isinstance(node, dict):
            node = tree[part] = {}
        tree = node
    tree[path[-1]] = value


def _curves(points: dict, any_points: dict) -> dict:
    """``curves.<split>`` from the radius points ``(split, variant) -> {r: v}`` and the k-axis
    points ``split -> {k: v}``."""
    curves: dict = {}
    for (split, variant), by_radius in points.items():
        curve = curves.setdefault(split, {})
        curve.setdefault("certified_accuracy", {})
        radii = sorted(by_radius)
        if curve.get("radii") is None:
            curve["radii"] = radii
        if radii == curve["radii"]:
            curve["certified_accuracy"][variant] = [by_radius[r] for r in radii]
    for split, by_k in any_points.items():
        counts = sorted(by_k)
        curves.setdefault(split, {})["any_count"] = {"counts": counts, "certified_accuracy": [by_k[k] for k in counts]}
    return curves


def summary_from_scalars(scalars: dict, config: dict | None = None, state: str = "finished") -> dict:
    """The summary.json fields the report reads, rebuilt from a W&B run's summary scalars."""
    config = config or {}
    summary: dict = {"status": "complete" if state == "finished" else str(state), "method": config.get("method"),
                     "seed": config.get("seed"), "n_members": scalars.get("n_members"),
                     "metrics": {}, "curves": {}, "timings": {}}
    points: dict[tuple[str, str], dict[float, float]] = {}
    any_points: dict[str, dict[int, float]] = {}
    for key, value in scalars.items():
        parts = str(key).split("/")
        if parts[0] == "metrics" and len(parts) > 1:
            _set(summary["metrics"], parts[1:], value)
        elif parts[0] == "timings" and len(parts) == 2:
            summary["timings"][parts[1]] = value
        elif parts[0] == "ca" and len(parts) == 4 and isinstance(value, (int, float)):
            radius = parse_radius_key(parts[3])
            if radius is not None:
                points.setdefault((parts[1], parts[2]), {})[radius] = float(value)
        elif parts[0] == "ca_any" and len(parts) == 3 and _COUNT.match(parts[2]) and isinstance(value, (int, float)):
            any_points.setdefault(parts[1], {})[int(parts[2][1:])] = float(value)
    summary["curves"] = _curves(points, any_points)
    summary["family"] = config.get("family") or ("gaussian" if points or not any_points else "count")
    return summary


def wandb_records(api, path: str, group: str | None) -> list[dict]:
    """One report record per W&B run of ``path`` (``ENTITY/PROJECT``) in ``group`` (None: all)."""
    if path.count("/") != 1 or not all(path.split("/")):
        raise CertSSBError(f"--wandb {path!r} is invalid: use ENTITY/PROJECT")
    try:
        runs = list(api.runs(path, filters={"group": group} if group else None))
    except Exception as exc:  # the public API raises its own errors for unknown projects or no network
        raise CertSSBError(f"reading W&B runs of {path} failed: {' '.join(str(exc).split())[:200]}") from exc
    records = []
    for run in runs:
        config = dict(run.config or {})
        state = str(getattr(run, "state", "finished"))
        summary = summary_from_scalars(dict(run.summary or {}), config, state)
        reason = None
        if state != "finished":
            reason = f"state={state}"
        elif not summary["curves"]:
            reason, summary["status"] = "no ca/... or ca_any/... metrics in the run's summary", "missing"
        label = f"{run.name} ({run.id})" if getattr(run, "id", None) else str(run.name)
        records.append({"run_dir": label, "overrides": parse_overrides(config.get("overrides") or []),
                        "summary": summary, "reason": reason, "status": summary["status"], "config": config})
    if not records:
        raise CertSSBError(f"no W&B runs in {path}" + (f" with group {group!r}" if group else ""))
    return records


def wandb_api():
    """``wandb.Api()`` (reads ``WANDB_API_KEY`` / ``~/.netrc``); replaced by a fake in tests."""
    import wandb

    try:
        return wandb.Api()
    except Exception as exc:  # no key, no network
        raise CertSSBError(f"cannot open the W&B API ({' '.join(str(exc).split())[:200]}): run wandb login") from exc


def collect_wandb_runs(api, path: str, group: str | None, split: str = "clean",
                       variant: str = "joint") -> tuple[pd.DataFrame, list[dict]]:
    """Like :func:`.local_runs.collect_runs`, for the W&B runs of ``path`` (``ENTITY/PROJECT``) in
    ``group``. ``api`` is a ``wandb.Api()`` (or an object with the same ``runs(path, filters=...)``)."""
    df, missing = build_table(wandb_records(api, path, group), split, variant)
    df.attrs["source"] = "wandb"
    return df, missing
