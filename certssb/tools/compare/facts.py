"""What each compared run was (its config values), the labels that tell the runs apart, and the
one line that says when they differ in more than the method.

"The method" is what a comparison of methods varies: for the Gaussian family the
``sigma_optimiser`` choice and its settings; for the count family the ``ensemble`` and
``certifier`` choices and their settings (parts, key, bags, spread, alpha), but not the training
settings every ensemble shares (``conf/ensemble/_training.yaml``: epochs, batch size, ...). When
runs of BOTH families are compared, the choices themselves are the methods, and the number of
models (N members vs parts or bags), the certifier's and the ensemble's settings and the training
settings differ by design between the families: they are named as expected, not flagged.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from certssb.tools.one_axis import family

__all__ = ["HEADLINE", "differences", "labels", "mismatch_warning", "run_facts"]

#: short names for the headline keys (in this order after the option choices)
HEADLINE = {"certifier.mode": "mode", "ensemble.n_members": "N", "certifier.alpha": "alpha", "seed": "seed",
            "sigma_optimiser.sigma_0": "sigma_0"}
#: the groups whose choice and settings are the method, per family
METHOD_GROUPS = {"gaussian": ("sigma_optimiser",), "count": ("sigma_optimiser", "ensemble", "certifier")}
#: the groups whose settings differ by design between the families
FAMILY_GROUPS = ("sigma_optimiser", "ensemble", "certifier")
#: top-level keys that change neither results nor certificates (as certssb.resume.config_fingerprint)
NOT_RESULTS = ("logger", "force", "optimized_metric", "cpu_threads")
EXECUTION_KEYS = {"ensemble": ("device", "vectorise", "group_size", "eval_batch_size", "checkpoint_dir"),
                  "sigma_optimiser": ("device",)}


@lru_cache(maxsize=1)
def training_keys() -> frozenset[str]:
    """``ensemble.<key>`` for every key of ``conf/ensemble/_training.yaml`` (what every ensemble shares)."""
    import yaml

    from certssb.resources import conf_dir

    try:
        data = yaml.safe_load((conf_dir() / "ensemble" / "_training.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        data = {}
    return frozenset(f"ensemble.{k}" for k in data if k != "defaults")


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


def _from_summary(summary: dict) -> dict[str, str]:
    cert = summary.get("certifier")
    values = {
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
    return {k: _show(v) for k, v in values.items() if v is not None}


def run_facts(run_dir: Path, summary: dict) -> tuple[dict[str, str], set[str]]:
    """What a run was: ``config key -> value`` (option choices under the group's name, e.g.
    ``certifier -> rab``; ``method`` from the summary) and the keys its command line overrode."""
    facts = _from_summary(summary)
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


def _not_results(key: str) -> bool:
    group, _, leaf = key.partition(".")
    return group in NOT_RESULTS or leaf in EXECUTION_KEYS.get(group, ()) or group == "hydra"


def _is_method(key: str, fam: str) -> bool:
    group = key.split(".", 1)[0]
    if key == "method" or group not in METHOD_GROUPS.get(fam, METHOD_GROUPS["gaussian"]):
        return key == "method"
    return fam == "gaussian" or key not in training_keys()


def classify(key: str, facts: list[dict[str, str]], fams: list[str]) -> str:
    """``method`` (what the comparison varies), ``expected`` (differs between the families by
    design) or ``mismatch`` (a difference besides the method)."""
    if key == "method":
        return "method"
    for fam in set(fams):
        values = {f[key] for f, m in zip(facts, fams) if m == fam}
        if len(values) > 1 and not _is_method(key, fam):
            return "mismatch"
    across = any(a[key] != b[key] for a, fa in zip(facts, fams) for b, fb in zip(facts, fams) if fa != fb)
    if not across or key in FAMILY_GROUPS:
        return "method"
    return "expected" if key.split(".", 1)[0] in FAMILY_GROUPS else "mismatch"


def _named(keys: list[str], facts: list[dict[str, str]]) -> list[str]:
    """``key (a / b)`` for the keys, a differing choice's settings folded into the choice."""
    choices = {k for k in keys if "." not in k}
    named = [k for k in keys if k in choices or k.split(".", 1)[0] not in choices or k in HEADLINE]
    return [f"{HEADLINE.get(k, k)} ({' / '.join(dict.fromkeys(f[k] for f in facts))})" for k in named]


def mismatch_warning(runs: list[tuple[Path, dict]]) -> str | None:
    """One line naming what the runs differ in besides the method (``warning: ...``), or, for runs
    of both families that differ only as the families do, what differs by design (``note: ...``);
    None when only the method differs."""
    facts = [run_facts(path, summary)[0] for path, summary in runs]
    fams = [family(summary) for _, summary in runs]
    kinds = {k: classify(k, facts, fams) for k in differences(facts) if not _not_results(k)}
    mismatch = _named([k for k, c in kinds.items() if c == "mismatch"], facts)
    expected = _named([k for k, c in kinds.items() if c == "expected"], facts)
    why = (f"what differs by design between the families {' / '.join(dict.fromkeys(fams))}: {', '.join(expected)} "
           f"(a count ensemble's N counts its parts or bags; each family trains and certifies its models its own "
           f"way)")
    if mismatch:
        return (f"warning: these runs differ in more than the method: {', '.join(mismatch)}; "
                f"their differences are not the method's alone" + (f" (expected: {why})" if expected else ""))
    return f"note: these runs differ only in their methods and in {why}" if expected else None
