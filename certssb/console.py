"""What a run prints at the end: the main numbers as a text table, then one plain sentence per
test set on what is certified (sound variant first; ``paper`` marked as test-time/evasion only)."""

from __future__ import annotations

TABLE_LABELS = {
    "joint": "joint (sound)",
    "joint_memory": "joint+memory (sound)",
    "paper": "paper (evasion only)",
    "paper_memory": "paper+mem (evasion)",
}
SPLITS_SHOWN = ("clean", "triggered")
_W = 22  # width of the variant column


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def sound_poison_variant(poison_count: dict) -> str:
    """The deployed classifier's sound variant: with the memory when it ran, else ``joint``."""
    return "joint_memory" if "joint_memory" in poison_count["certified_accuracy"] else "joint"


def _half_rule(xs, values, smallest):
    """Largest x >= ``smallest`` whose value is > 0 and at least half the first value; None if none."""
    good = [(x, v) for x, v in zip(xs, values) if x >= smallest and v > 0 and v >= values[0] / 2]
    return max(good) if good else None


def _radius_clause(curve: dict, variant: str, what: str) -> str:
    ca = curve["certified_accuracy"].get(variant)
    if ca is None:
        return ""
    hit = _half_rule(curve["radii"], ca, 1e-12)
    if hit is None:  # fewer than half survive the smallest positive radius: say what does
        hit = next(((r, v) for r, v in zip(curve["radii"], ca) if r > 0 and v > 0), None)
    return f"; {_pct(hit[1])} against {what} of L2 {hit[0]:.3g}" if hit else ""


def statement(split: str, curve: dict) -> str | None:
    """One sentence on what the sound certificate covers for ``split`` (None without a poison curve).

    Poisoned samples: the largest k of the curve (k >= 1) certified for at least half as many inputs
    as the test trigger alone (k = 0; else k = 1 if any input survives one sample), then the share
    at k = 0 and at the attack's own number of poisoned samples. Then, by the same half rule on the
    radius grid (else the smallest positive radius certified for anyone), the sound joint L2 radius
    and the test-time (evasion) radius, so the sentence says what is covered even when the attack
    is not.
    """
    pc = curve.get("poison_count")
    if not pc:
        return None
    variant = sound_poison_variant(pc)
    mem = "_memory" if variant.endswith("_memory") else ""
    counts, ca = pc["counts"], pc["certified_accuracy"][variant]
    eta, eps = pc["eta"], pc["eps"]
    where = " (with the storage-update memory)" if mem else ""
    n_p = pc.get("n_poisoned")
    at_np = (pc.get("certified_accuracy_at_n_poisoned") or {}).get(variant)
    attack = ""
    if n_p and at_np is not None:
        attack = (f"; the attack poisoned {n_p} sample{'' if n_p == 1 else 's'} ({_pct(at_np)} certified against "
                  "that many)")
    rest = (_radius_clause(curve, "joint" + mem, "any joint change (training and test together)")
            + _radius_clause(curve, "paper" + mem, "a test-time perturbation alone (evasion)"))
    hit = _half_rule(counts, ca, 1)
    if hit is None and len(counts) > 1 and ca[1] > 0:
        hit = (counts[1], ca[1])  # fewer than half survive one poisoned sample, but some do
    if not ca[0]:
        head = f"no test input is certified correct against a test trigger of L2 {eps:.3g}{where}"
    elif hit is None:
        head = (f"{_pct(ca[0])} of test inputs are certified correct against a test trigger of L2 {eps:.3g} "
                f"alone{where}, none against even one poisoned training sample of L2 {eta:.3g} on top")
    else:
        k, ca_k = hit
        head = (f"{_pct(ca_k)} of test inputs are certified correct against up to {k} poisoned training "
                f"sample{'' if k == 1 else 's'} of L2 {eta:.3g} each plus a test trigger of L2 {eps:.3g}{where}; "
                f"{_pct(ca[0])} against the test trigger alone")
    return f"{split}: {head}{attack}{rest}."


def plain_statements(summary: dict) -> dict:
    """``{split: sentence}`` for the clean and the triggered test set."""
    out = {}
    if summary.get("family") == "count":
        return out
    for split in SPLITS_SHOWN:
        text = statement(split, summary["curves"].get(split) or {})
        if text:
            out[split] = text
    return out


def format_table(summary: dict) -> str:
    """A short text table of the run's main numbers, ending with the plain statements."""
    if summary.get("family") == "count":
        return _count_table(summary)
    m = summary["metrics"]
    asr = m["asr"] if m["asr"] is not None else float("nan")
    lines = [f"method={summary['method']}  N={summary['n_members']}  alpha={summary['alpha']}",
             f"clean accuracy {m['clean_accuracy']:.4f}   ASR {asr:.4f}"]
    if m.get("undefended_asr") is not None:
        lines.append(f"undefended: clean accuracy {m['undefended_clean_accuracy']:.4f}   ASR {m['undefended_asr']:.4f}")
    lines.append(f"attack joint L2 (max over test inputs) {m['attack_joint_l2']:.4f}")
    for name in SPLITS_SHOWN:
        curve = summary["curves"][name]
        sm = m.get(name) or {}
        cov = sm.get("covered_fraction") or {}
        cov_key = "exact_memory" if cov.get("exact_memory") is not None else "exact"
        lines.append(f"{name}: ACR {sm.get('acr', float('nan')):.4f} (joint, sound)   realised attack covered "
                     f"(exact ellipsoid{', memory' if cov_key == 'exact_memory' else ''}) {_pct(cov.get(cov_key))}")
        lines.append(f"{'':<4}{'L2 radius':<{_W}}" + "".join(f"r={r:<7.3g}" for r in curve["radii"]))
        for variant, values in curve["certified_accuracy"].items():
            lines.append(f"{'':<4}{TABLE_LABELS.get(variant, variant):<{_W}}" + "".join(f"{v:<9.4f}" for v in values))
        pc = curve.get("poison_count")
        if pc:
            lines.append(f"{'':<4}{'poisoned samples':<{_W}}" + "".join(f"k={k:<7d}" for k in pc["counts"])
                         + f"  (each L2<={pc['eta']:.3g}, trigger L2<={pc['eps']:.3g})")
            for variant, values in pc["certified_accuracy"].items():
                lines.append(f"{'':<4}{TABLE_LABELS.get(variant, variant):<{_W}}"
                             + "".join(f"{v:<9.4f}" for v in values))
    statements = summary.get("certified_statement") or plain_statements(summary)
    lines += list(statements.values())
    return "\n".join(lines)


def _count_table(summary: dict) -> str:
    m = summary["metrics"]
    lines = [f"method={summary['method']}  models={summary['n_members']}  (count family: any k changed training samples)"]
    for name in SPLITS_SHOWN:
        curve = summary["curves"][name]["any_count"]
        sm = m.get(name) or {}
        lines.append(f"{name}: accuracy {sm.get('accuracy', float('nan')):.4f}   attack as run certified "
                     f"{_pct(sm.get('realised_attack_certified'))}")
        lines.append(f"{'':<4}{'changed samples':<{_W}}" + "".join(f"k={k:<7d}" for k in curve["counts"]))
        lines.append(f"{'':<4}{'certified accuracy':<{_W}}" + "".join(f"{v:<9.4f}" for v in curve["certified_accuracy"]))
    return "\n".join(lines)
