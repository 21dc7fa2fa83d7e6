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


def statement(split: str, curve: dict) -> str | None:
    """One sentence on what the sound certificate covers for ``split`` (None without a poison curve).

    k is the largest count of the curve (k >= 1) certified for at least half as many inputs as
    the test trigger alone (k = 0); the share at the attack's own number of poisoned samples follows.
    """
    pc = curve.get("poison_count")
    if not pc:
        return None
    variant = sound_poison_variant(pc)
    counts, ca = pc["counts"], pc["certified_accuracy"][variant]
    eta, eps = pc["eta"], pc["eps"]
    ca0 = ca[0]
    where = " (with the storage-update memory)" if variant.endswith("_memory") else ""
    tail = ""
    n_p = pc.get("n_poisoned")
    at_np = (pc.get("certified_accuracy_at_n_poisoned") or {}).get(variant)
    if n_p and at_np is not None:
        tail = f"; the attack poisoned {n_p} samples ({_pct(at_np)} certified against that many)"
    if not ca0:
        return (f"{split}: no test input is certified correct against a test trigger of L2 {eps:.3g}{where}, "
                f"even with no poisoned training sample{tail}.")
    good = [k for k, v in zip(counts, ca) if k >= 1 and v > 0 and v >= ca0 / 2]
    if not good:
        return (f"{split}: {_pct(ca0)} of test inputs are certified correct against a test trigger of L2 {eps:.3g}"
                f" alone{where}, none against one more poisoned training sample of L2 {eta:.3g}{tail}.")
    k = max(good)
    ca_k = ca[counts.index(k)]
    sample = "sample" if k == 1 else "samples"
    return (f"{split}: {_pct(ca_k)} of test inputs are certified correct against up to {k} poisoned training "
            f"{sample} of L2 {eta:.3g} each plus a test trigger of L2 {eps:.3g}{where}; {_pct(ca0)} against the "
            f"test trigger alone{tail}.")


def plain_statements(summary: dict) -> dict:
    """``{split: sentence}`` for the clean and the triggered test set."""
    out = {}
    for split in SPLITS_SHOWN:
        text = statement(split, summary["curves"].get(split) or {})
        if text:
            out[split] = text
    return out


def format_table(summary: dict) -> str:
    """A short text table of the run's main numbers, ending with the plain statements."""
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
