"""Runs pulled from W&B (public API) as the report's records: the summary rebuilt from the
logged scalar names (:mod:`certssb.logger.flatten`), the swept parameters from the run's config.

A W&B run holds ``summary`` keys ``metrics/<path>``, ``ca/<split>/<variant>/r<radius>``,
``timings/<name>`` and ``n_members``, and ``config`` = the composed config plus ``overrides``
(the job's command-line overrides) and ``method``. Runs whose ``state`` is not ``finished`` go to
the missing list.
"""

from __future__ import annotations

import re
from typing import Any

from certssb.errors import CertSSBError

_RADIUS = re.compile(r"^r(?P<value>[0-9e_]+)$")


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


def summary_from_scalars(scalars: dict, config: dict | None = None, state: str = "finished") -> dict:
    """The summary.json fields the report reads, rebuilt from a W&B run's summary scalars."""
    config = config or {}
    summary: dict = {"status": "complete" if state == "finished" else str(state), "method": config.get("method"),
                     "seed": config.get("seed"), "n_members": scalars.get("n_members"),
                     "metrics": {}, "curves": {}, "timings": {}}
    points: dict[tuple[str, str], dict[float, float]] = {}
    for key, value in scalars.items():
        parts = str(key).split("/")
        if parts[0] == "metrics" and len(parts) > 1:
            _set(summary["metrics"], parts[1:], value)
        elif parts[0] == "timings" and len(parts) == 2:
            summary["timings"][parts[1]] = value
        elif parts[0] == "ca" and len(parts) == 4:
            radius = parse_radius_key(parts[3])
            if radius is not None and isinstance(value, (int, float)):
                points.setdefault((parts[1], parts[2]), {})[radius] = float(value)
    for (split, variant), by_radius in points.items():
        curve = summary["curves"].setdefault(split, {"radii": None, "certified_accuracy": {}})
        radii = sorted(by_radius)
        if curve["radii"] is None:
            curve["radii"] = radii
        if radii == curve["radii"]:
            curve["certified_accuracy"][variant] = [by_radius[r] for r in radii]
    return summary


def wandb_records(api, path: str, group: str | None) -> list[dict]:
    """One report record per W&B run of ``path`` (``ENTITY/PROJECT``) in ``group`` (None: all)."""
    from certssb.tools.report import parse_overrides

    if path.count("/") != 1 or not all(path.split("/")):
        raise CertSSBError(f"--wandb {path!r} is invalid: use ENTITY/PROJECT")
    try:
        runs = list(api.runs(path, filters={"group": group} if group else None))
    except Exception as exc:  # the public API raises its own errors for unknown projects or no network
        raise CertSSBError(f"reading W&B runs of {path} failed: {' '.join(str(exc).split())[:200]}") from exc
    records = []
    for run in runs:
        config = dict(run.config or {})
        scalars = dict(run.summary or {})
        state = str(getattr(run, "state", "finished"))
        summary = summary_from_scalars(scalars, config, state)
        reason = None
        if state != "finished":
            reason = f"state={state}"
        elif not summary["curves"]:
            reason, summary["status"] = "no ca/... metrics in the run's summary", "missing"
        label = f"{run.name} ({run.id})" if getattr(run, "id", None) else str(run.name)
        records.append({"run_dir": label, "overrides": parse_overrides(config.get("overrides") or []),
                        "summary": summary, "reason": reason, "status": summary["status"], "config": config})
    if not records:
        raise CertSSBError(f"no W&B runs in {path}" + (f" with group {group!r}" if group else ""))
    return records
