"""What a run prints at the end: the verdict (:mod:`certssb.verdict`) first, then the detailed tables,
then one plain sentence per test set on what is certified, each saying what it covers: feature
changes with the labels held (the Gaussian family; ``paper`` marked as test-time/evasion only) or any
k changed training samples, labels included (the count family)."""

from __future__ import annotations

from certssb.verdict import build_verdict

TABLE_LABELS = {
    "joint": "joint (sound)",
    "joint_memory": "joint+memory (sound)",
    "paper": "paper (evasion only)",
    "paper_memory": "paper+mem (evasion)",
}
SPLITS_SHOWN = ("clean", "triggered")
_W = 22  # width of the row-label column


def _pct(value) -> str:
    """A share as a percentage; one decimal where whole percent would read 0% or 100% wrongly."""
    if value is None:
        return "n/a"
    text = f"{100 * value:.0f}%"
    return f"{100 * value:.1f}%" if text in ("0%", "100%") and 0 < value < 1 else text


def sound_poison_variant(poison_count: dict) -> str:
    """The deployed classifier's sound variant: with the memory when it ran, else ``joint``."""
    return "joint_memory" if "joint_memory" in poison_count["certified_accuracy"] else "joint"


def _half_rule(xs, values, smallest):
    """Largest x >= ``smallest`` whose value is > 0 and at least half the first value; None if none."""
    good = [(x, v) for x, v in zip(xs, values) if x >= smallest and v > 0 and v >= values[0] / 2]
    return max(good) if good else None


def _best(xs, values, smallest):
    """The half rule, else the smallest x >= ``smallest`` with a positive value (what IS certified)."""
    hit = _half_rule(xs, values, smallest)
    return hit or next(((x, v) for x, v in zip(xs, values) if x >= smallest and v > 0), None)


# -------------------------------------------------------------------------------------------------
# sentences


def statement(split: str, curve: dict, attack: dict | None = None) -> str | None:
    """One sentence on what the sound certificate covers for ``split`` (None without curves).

    Gaussian family: the largest radius certified for at least half as many inputs as radius 0 (else
    the smallest positive radius certified for anyone), then the poisoned-sample count (labels
    unchanged), the test-time (evasion) radius and the attack as run. Count family: the share
    certified against the attack's own number of changed samples, then the largest k by the half rule.
    ``attack``: the split's metrics (``realised_attack_certified``, ``attack_changed_samples``) and
    ``relabelled``: the training labels the attack changed.
    """
    if "any_count" in curve and "certified_accuracy" not in curve:
        return _count_statement(split, curve, attack or {})
    pc = curve.get("poison_count")
    if not pc:
        return None
    mem = "_memory" if sound_poison_variant(pc).endswith("_memory") else ""
    where = " (with the storage-update memory)" if mem else ""
    ca = curve["certified_accuracy"]
    joint = _best(curve["radii"], ca["joint" + mem], 1e-12)
    if joint is None:
        zero = ca["joint" + mem][0] if curve["radii"][0] == 0 else 0.0
        head = (f"{_pct(zero)} of test inputs are certified correct at radius 0 only{where}" if zero else
                f"no test input is certified correct at any positive L2 radius{where}")
    else:
        head = (f"{_pct(joint[1])} of test inputs are certified correct against any joint change of L2 {joint[0]:.3g} "
                f"(training features and test input together, labels unchanged){where}")
    return f"{split}: {head}{_poison_clause(pc, mem)}{_evasion_clause(curve, mem)}{_gaussian_attack_clause(split, attack)}."


def _poison_clause(pc: dict, mem: str) -> str:
    counts, ca = pc["counts"], pc["certified_accuracy"]["joint" + mem]
    hit = _best(counts, ca, 1)
    if hit is None:
        return ""
    k = hit[0]
    return (f"; {_pct(hit[1])} against up to {k} poisoned training sample{'' if k == 1 else 's'} of L2 "
            f"{pc['eta']:.3g} each (labels unchanged) plus a test trigger of L2 {pc['eps']:.3g}")


def _evasion_clause(curve: dict, mem: str) -> str:
    ca = curve["certified_accuracy"].get("paper" + mem)
    hit = _best(curve["radii"], ca, 1e-12) if ca else None
    return f"; {_pct(hit[1])} against a test-time perturbation alone (evasion) of L2 {hit[0]:.3g}" if hit else ""


def _gaussian_attack_clause(split: str, attack: dict | None) -> str:
    if not attack or not attack.get("attack_changed_samples"):
        return ""
    done = attack.get("realised_attack_certified")
    if attack.get("relabelled"):
        n = attack["relabelled"]
        return (f"; the attack as run is not covered: it relabelled {n} training sample{'' if n == 1 else 's'}, "
                "outside this certificate")
    if split == "triggered" and done:
        return (f"; on {_pct(done)} of the triggered inputs the backdoor provably failed (its own perturbations "
                "inside the certified ellipsoid)")
    return f"; the attack as run is covered for {_pct(done)}"


def _count_statement(split: str, curve: dict, attack: dict) -> str:
    counts, ca = curve["any_count"]["counts"], curve["any_count"]["certified_accuracy"]
    changed, done = attack.get("attack_changed_samples") or 0, attack.get("realised_attack_certified")
    samples = f"{changed} changed training sample{'' if changed == 1 else 's'}"
    hit = _best(counts, ca, 1)
    more = (f"; {_pct(hit[1])} against any {hit[0]}" if hit and hit[0] != changed else "")
    if split == "triggered" and done:
        return (f"{split}: on {_pct(done)} of the triggered test inputs the backdoor provably failed: correct and "
                f"certified against any {samples} (labels included), as many as the attack changed{more}.")
    if not changed:
        head = f"{_pct(ca[0])} of test inputs are predicted correctly (the attack changed no training sample)"
    else:
        head = (f"{_pct(done)} of test inputs are certified correct against any {samples} (features and labels), "
                "as many as the attack changed")
    return f"{split}: {head}{more}."


def plain_statements(summary: dict) -> dict:
    """``{split: sentence}`` for the clean and the triggered test set."""
    out = {}
    relabelled = (summary.get("attack") or {}).get("n_relabelled", 0)
    for split in SPLITS_SHOWN:
        attack = {**(summary["metrics"].get(split) or {}), "relabelled": relabelled}
        text = statement(split, summary["curves"].get(split) or {}, attack)
        if text:
            out[split] = text
    return out


# -------------------------------------------------------------------------------------------------
# the table


def _rows(label_of, series: dict, fmt: str) -> list[str]:
    """One row per series; a series equal to an earlier one is folded into one line."""
    lines, seen = [], {}
    for key, values in series.items():
        same = next((k for k, v in seen.items() if v == values), None)
        if same is not None:
            lines.append(f"{'':<4}{label_of(key):<{_W}}same as {label_of(same)}")
            continue
        seen[key] = values
        lines.append(f"{'':<4}{label_of(key):<{_W}}" + "".join(format(v, fmt) for v in values))
    return lines


def _gaussian_details(summary: dict) -> list[str]:
    m, lines = summary["metrics"], []
    for name in SPLITS_SHOWN:
        curve, sm = summary["curves"][name], m.get(name) or {}
        lines.append(f"{name}: ACR {sm.get('acr', float('nan')):.4f} (joint, sound); attack as run certified "
                     f"{_pct(sm.get('realised_attack_certified'))}")
        lines.append(f"{'':<4}{'L2 radius':<{_W}}" + "".join(f"r={r:<7.3g}" for r in curve["radii"]))
        lines += _rows(lambda v: TABLE_LABELS.get(v, v), curve["certified_accuracy"], "<9.4f")
        pc = curve.get("poison_count")
        if pc:
            lines.append(f"{'':<4}{'poisoned samples':<{_W}}" + "".join(f"k={k:<7d}" for k in pc["counts"])
                         + f"  (labels unchanged; each L2<={pc['eta']:.3g}, trigger L2<={pc['eps']:.3g})")
            lines += _rows(lambda v: TABLE_LABELS.get(v, v), pc["certified_accuracy"], "<9.4f")
    return lines


def _count_details(summary: dict) -> list[str]:
    lines = []
    for name in SPLITS_SHOWN:
        curve, sm = summary["curves"][name]["any_count"], summary["metrics"].get(name) or {}
        lines.append(f"{name}: accuracy {sm.get('accuracy', float('nan')):.4f}; median certified count "
                     f"{sm.get('any_count_median')}; attack as run certified {_pct(sm.get('realised_attack_certified'))}")
        lines.append(f"{'':<4}{'changed samples':<{_W}}" + "".join(f"k={k:<7d}" for k in curve["counts"]))
        lines += _rows(lambda v: v, {"certified accuracy": curve["certified_accuracy"]}, "<9.4f")
    return lines


def format_table(summary: dict) -> str:
    """The run's results as text: the verdict and its warnings, the details, the plain sentences."""
    verdict = summary.get("verdict") or build_verdict(summary)
    details = _count_details(summary) if summary.get("family") == "count" else _gaussian_details(summary)
    statements = summary.get("certified_statement") or plain_statements(summary)
    return "\n".join([*verdict["lines"], *verdict["warnings"], "details:", *details, *statements.values()])
