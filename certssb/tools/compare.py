"""Side-by-side certified-accuracy table of several runs (e.g. RAB vs Cert-SSB).

    python -m certssb.tools.compare RUN_DIR [RUN_DIR ...] [--split clean|triggered] [--out FILE.md]

The headline table leads with the sound ACR (``joint``) and the share of inputs whose sound
certificate covers the realised attack (exact ellipsoid test); ``paper`` is a test-time (evasion)
certificate and is labelled so. Then every run's L2 curves (the sound variant first, with and
without memory) become columns, the radius grid the rows; runs must share the radius grid. Last,
certified accuracy against k poisoned training samples (``curves.<split>.poison_count``).

Each run is labelled by what distinguishes it from the other runs compared: its method, then every
config value in which the runs differ (``key=value``; N = ``ensemble.n_members``, alpha =
``certifier.alpha``), read from ``summary.json`` (method, certifier name and mode, N, alpha, seed,
dataset, attack, sigma_0) and, where the run has Hydra's ``.hydra/`` folder, from its
``config.yaml`` (every value), ``hydra.yaml`` (the options chosen) and ``overrides.yaml``. A value
that follows from a differing option choice (``certifier=rab`` vs ``storage_update`` changes
``certifier.memory...``) is not repeated unless it was overridden or is one of the headline keys
(certifier mode, N, alpha, seed, sigma_0). When the runs differ in more than the method (the
``sigma_optimiser`` choice and its settings), ONE ``warning:`` line on stderr names what else
differs (certifier, N, alpha, dataset, attack, seed, ...): such numbers are not a like-for-like
comparison of methods. Keys that change neither results nor certificates (logging, devices,
``force``; see ``certssb.resume.config_fingerprint``) are not warned about.
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


METHOD_GROUP = "sigma_optimiser"  # the method: this group's choice and its settings
#: short names for the headline keys (in this order after the option choices)
HEADLINE = {"certifier.mode": "mode", "ensemble.n_members": "N", "certifier.alpha": "alpha", "seed": "seed",
            "sigma_optimiser.sigma_0": "sigma_0"}
#: top-level keys that change neither results nor certificates (as certssb.resume.config_fingerprint)
NOT_RESULTS = ("logger", "force", "optimized_metric", "cpu_threads")
EXECUTION_KEYS = {"ensemble": ("device", "vectorise", "group_size", "eval_batch_size", "checkpoint_dir"),
                  "sigma_optimiser": ("device",)}


def _read_yaml(path: Path):
    import yaml

    try:
        return yaml.safe_load(path.read_text()) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        return None


def _flatten(node, prefix: str = "") -> dict:
    out = {}
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "_target_":
                continue
            out.update(_flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = node
    return out


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return "null" if value is None else str(value)


def run_facts(run_dir: Path, summary: dict) -> tuple[dict[str, str], set[str]]:
    """What a run was: ``config key -> value`` (option choices under the group's name, e.g.
    ``certifier -> rab``; ``method`` from the summary) and the keys its command line overrode."""
    facts: dict[str, str] = {}
    cert = summary.get("certifier")
    from_summary = {
        "method": summary.get("method"),
        "certifier": cert.get("name") if isinstance(cert, dict) else None,
        "certifier.mode": cert.get("mode") if isinstance(cert, dict) else None,
        "ensemble.n_members": summary.get("n_members"),
        "certifier.alpha": summary.get("alpha"),
        "seed": summary.get("seed"),
        "dataset": (summary.get("dataset") or {}).get("name"),
        "attack": (summary.get("attack") or {}).get("name"),
        "sigma_optimiser.sigma_0": summary.get("sigma_0"),
    }
    facts.update({k: _show(v) for k, v in from_summary.items() if v is not None})
    hydra_dir = Path(run_dir) / ".hydra"
    config = _read_yaml(hydra_dir / "config.yaml")
    if isinstance(config, dict):
        for key, value in _flatten(config).items():
            group, _, leaf = key.partition(".")
            if leaf == "name" and isinstance(config.get(group), dict):
                facts.setdefault(group, _show(value))  # the option's name, when no choice is recorded
            else:
                facts[key] = _show(value)
    hydra = _read_yaml(hydra_dir / "hydra.yaml")
    choices = (((hydra or {}).get("hydra") or {}).get("runtime") or {}).get("choices") or {}
    for group, choice in choices.items():
        if not str(group).startswith("hydra/") and choice is not None:
            facts[str(group)] = _show(choice)
    overridden = set()
    for line in _read_yaml(hydra_dir / "overrides.yaml") or []:
        key, _, value = str(line).partition("=")
        key = key.lstrip("+~")
        overridden.add(key)
        if key not in facts:
            facts[key] = value
    return facts, overridden


def differences(facts: list[dict[str, str]]) -> list[str]:
    """The keys whose values are not the same in every run (keys present in all runs)."""
    common = set.intersection(*(set(f) for f in facts)) if facts else set()
    return [k for k in _ordered(common) if len({f[k] for f in facts}) > 1]


def _ordered(keys) -> list[str]:
    from certssb.config import GROUPS

    rank = {g: i for i, g in enumerate(("method", *GROUPS))}
    head = {k: i for i, k in enumerate(HEADLINE)}
    return sorted(keys, key=lambda k: (0, rank[k], "") if k in rank else
                  (1, head[k], "") if k in head else (2, 0, k))


def _implied(key: str, differing: set[str], overridden: set[str]) -> bool:
    """A value that follows from a differing option choice (and was not set on its own)."""
    group = key.split(".", 1)[0]
    return "." in key and group in differing and key not in HEADLINE and key not in overridden


def labels(runs: list[tuple[Path, dict]]) -> list[str]:
    """One label per run: its method plus every value in which the compared runs differ."""
    facts = [run_facts(path, summary) for path, summary in runs]
    differing = differences([f for f, _ in facts])
    overridden = set().union(*(o for _, o in facts))  # set on any run's command line: shown for all
    shown = [k for k in differing if k != "method" and not _implied(k, set(differing), overridden)]
    out = []
    for (path, summary), (fact, _) in zip(runs, facts):
        parts = [f"{HEADLINE.get(k, k)}={fact[k]}" for k in shown]
        name = summary.get("method", Path(path).name)
        out.append(f"{name} ({', '.join(parts)})" if parts else str(name))
    if len(set(out)) < len(out):  # the same everywhere we can see: tell them apart by folder
        out = [f"{label} [{Path(path).name}]" for label, (path, _) in zip(out, runs)]
    return out


def _is_method(key: str) -> bool:
    return key == "method" or key.split(".", 1)[0] == METHOD_GROUP


def _not_results(key: str) -> bool:
    group, _, leaf = key.partition(".")
    return group in NOT_RESULTS or leaf in EXECUTION_KEYS.get(group, ()) or group == "hydra"


def mismatch_warning(runs: list[tuple[Path, dict]]) -> str | None:
    """One line naming what the runs differ in besides the method, or None when only the method differs."""
    facts = [run_facts(path, summary)[0] for path, summary in runs]
    differing = [k for k in differences(facts) if not _is_method(k) and not _not_results(k)]
    if not differing:
        return None
    groups = {k for k in differing if "." not in k}
    named = [k for k in differing if k in groups or k.split(".", 1)[0] not in groups or k in HEADLINE]
    parts = [f"{HEADLINE.get(k, k)} ({' / '.join(dict.fromkeys(f[k] for f in facts))})" for k in named]
    return (f"warning: these runs differ in more than the method: {', '.join(parts)}; "
            f"their differences are not the method's alone")


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m certssb.tools.compare",
        description=("Put several runs side by side as Markdown: headline metrics (the sound joint ACR first), "
                     "certified accuracy against the L2 radius per variant, and against k poisoned training "
                     "samples. Each run is labelled by the config values in which the runs differ; one warning "
                     "line on stderr when they differ in more than the method (certifier, N, alpha, dataset, "
                     "attack, seed). Example: python -m certssb.tools.compare "
                     "multirun/compare_digits/sigma_optimiser=fixed multirun/compare_digits/sigma_optimiser=sga"))
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="run folders, each holding a complete summary.json (and Hydra's .hydra/ where run "
                             "through certssb.run)")
    parser.add_argument("--split", default="clean,triggered",
                        help="comma-separated test sets for the curve tables: clean, triggered, triggered_all "
                             "(default clean,triggered)")
    parser.add_argument("--title", default="Certified accuracy", help="heading of the Markdown output")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE.md",
                        help="also write the Markdown to this file (it is always printed)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        runs = [(p, load(p)) for p in args.runs]
        summaries = list(zip(labels(runs), (s for _, s in runs)))
        warning = mismatch_warning(runs) if len(runs) > 1 else None
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
    if warning:
        print(warning, file=sys.stderr)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
