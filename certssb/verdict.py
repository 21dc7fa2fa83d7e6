"""The verdict: the few lines a run opens its results with (and ``summary.json``'s ``verdict``).

What ran (method, family, N, certifier, alpha); clean accuracy and ASR of the undefended and the
defended model; the abstain rate; the largest certificate and the share certified at it; whether
the attack as run is certified and, if not, why, in numbers. Then one-line warnings where a run
cannot certify: the largest radius (or count) the ensemble can ever certify and what it would need,
accuracy below chance, most inputs abstaining.
"""

from __future__ import annotations

import math

from scipy import stats

FAMILY = {"gaussian": "Gaussian family: an L2 radius of feature changes, labels held as they are",
          "count": "count family: any k training samples changed arbitrarily, labels included"}


def _n(count, noun: str) -> str:
    """``1 training sample``, ``7 training samples``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _pct(value) -> str:
    """A share as a percentage; one decimal where whole percent would read 0% or 100% wrongly."""
    if value is None:
        return "n/a"
    text = f"{100 * value:.0f}%"
    return f"{100 * value:.1f}%" if text in ("0%", "100%") and 0 < value < 1 else text


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _ran(s: dict) -> str:
    cert = s.get("certifier") or {}
    ens = s.get("ensemble") or {}
    if s.get("family") == "count":
        key = f", key {ens['key']}" if "key" in ens else ""
        shape = {"partition": f"{s['n_members']} models on disjoint parts{key}",
                 "finite_aggregation": f"{s['n_members']} models on {ens.get('spread')} buckets each{key}",
                 "bagging": f"{s['n_members']} models on bags of {ens.get('bag_size')} samples"}.get(ens.get("name"),
                                                                                              f"{s['n_members']} models")
        alpha = f", alpha {s['alpha']}" if s.get("alpha") is not None else " (deterministic)"
        return f"ran: {s['method']} ({FAMILY['count']}); {shape}; certifier {cert.get('name')}{alpha}"
    bounds = "hard votes, Clopper-Pearson" if cert.get("mode") == "hard" else "soft scores, Hoeffding"
    memory = " + storage-update memory" if (cert.get("memory") or {}).get("enabled") else ""
    return (f"ran: {s['method']} ({FAMILY['gaussian']}); N={s['n_members']} members; certifier "
            f"{cert.get('name')} ({bounds}{memory}), alpha {s['alpha']}")


def _accuracy(s: dict) -> list[str]:
    m, out = s["metrics"], []
    if m.get("undefended_clean_accuracy") is not None:
        asr = m.get("undefended_asr")
        works = "" if asr is None else (" (the attack works)" if asr >= 0.5 else " (the attack barely works)")
        out.append(f"undefended model: clean accuracy {_num(m['undefended_clean_accuracy'])}, ASR {_num(asr)}{works}")
    defended = "ensemble" if s.get("family") == "count" else "smoothed classifier"
    clean = m.get("clean") or {}
    out.append(f"{defended}: clean accuracy {_num(m.get('clean_accuracy'))}, ASR {_num(m.get('asr'))}, "
               f"abstain {_pct(clean.get('abstain_rate'))}")
    return out


def _largest(s: dict, split: str) -> tuple[float, float] | None:
    """The largest point of ``split``'s sound certified-accuracy curve with a positive share."""
    curve = s["curves"].get(split) or {}
    if s.get("family") == "count":
        xs, ys = curve["any_count"]["counts"], curve["any_count"]["certified_accuracy"]
    else:
        ca = curve["certified_accuracy"]
        xs, ys = curve["radii"], ca.get("joint_memory", ca["joint"])
    hits = [(x, y) for x, y in zip(xs, ys) if y > 0]
    return max(hits) if hits else None


def _certified(s: dict) -> str:
    m = s["metrics"].get("clean") or {}
    best = _largest(s, "clean")
    if s.get("family") == "count":
        if best is None:
            return "certified: no clean test input (every one abstained or was wrong)"
        return (f"certified: median {m.get('any_count_median')} changed training samples over the correct clean "
                f"inputs, at most {m.get('max_any_count')}; {_pct(best[1])} of clean inputs at k={best[0]}")
    top = m.get("max_radius")
    if not top:
        return "certified: no clean test input at any positive L2 radius"
    at = f"; {_pct(best[1])} of clean inputs at r={best[0]:g}" if best and best[0] > 0 else ""
    return f"certified: largest sound L2 radius {top:.3g} (labels held){at}; {_pct(m.get('accuracy'))} correct"


def _attack(s: dict) -> list[str]:
    m, attack = s["metrics"], s.get("attack") or {}
    clean, trig = (m.get(n) or {} for n in ("clean", "triggered"))
    shares = (f"clean {_pct(clean.get('realised_attack_certified'))}, triggered "
              f"{_pct(trig.get('realised_attack_certified'))}")
    changed = clean.get("attack_changed_samples", 0)
    if not changed and not attack.get("n_poisoned"):
        return [f"attack as run: no training sample was changed (attack={attack.get('name')}); certified {shares}"]
    head = f"attack as run (changed {_n(changed, 'training sample')}): certified for {shares}"
    why = _why_not(s) if not (clean.get("realised_attack_certified") or trig.get("realised_attack_certified")) else ""
    failed = trig.get("realised_attack_certified")
    proof = (f"; on {_pct(failed)} of the triggered inputs the backdoor provably failed" if failed else "")
    return [head + proof + (f": {why}" if why else "")]


def _why_not(s: dict) -> str:
    """Why the attack as run is certified nowhere, in numbers."""
    m, attack = s["metrics"], s.get("attack") or {}
    clean = m.get("clean") or {}
    if s.get("family") == "count":
        top = clean.get("max_any_count", -1)
        return (f"it changed {_n(clean.get('attack_changed_samples'), 'training sample')}, the largest certified "
                f"count of a correct clean input is {top if top >= 0 else 'none'}")
    parts = []
    if attack.get("relabels"):
        parts.append(f"it relabelled {_n(attack.get('n_relabelled'), 'training sample')}, outside the Gaussian "
                     "certificate (labels held)")
    size, top = m.get("attack_joint_l2_median"), clean.get("max_radius") or 0.0
    if size and size > top:
        parts.append(f"its joint L2 size {size:.3g} exceeds the largest certified radius {top:.3g}")
    return "; ".join(parts)


def build_verdict(s: dict) -> dict:
    """``{"lines": [...], "warnings": [...]}`` of a complete run's summary."""
    lines = [_ran(s), *_accuracy(s), _certified(s), *_attack(s)]
    return {"lines": lines, "warnings": warnings(s)}


def warnings(s: dict) -> list[str]:
    """One line each: what stops this run from certifying, with what would change it."""
    m = s["metrics"]
    clean = m.get("clean") or {}
    classes = (s.get("dataset") or {}).get("num_classes") or 0
    out = []
    acc = m.get("clean_accuracy")
    if classes and acc is not None and acc < 1.0 / classes:
        out.append(f"warning: clean accuracy {acc:.3g} is below chance ({1 / classes:.3g}): the models learnt little "
                   "(more epochs, a smaller sigma, a model for this dataset?)")
    if (clean.get("abstain_rate") or 0) > 0.5:
        out.append(f"warning: {_pct(clean['abstain_rate'])} of clean inputs abstained (no certificate): "
                   + ("more models (ensemble.n_members)" if s.get("family") != "count" else "more models or parts"))
    out += _reach_warnings(s)
    return out


def _reach_warnings(s: dict) -> list[str]:
    """Gaussian: the largest radius N members can certify (all N votes for one class) against the
    attack's size, and the N it would need; count: the largest count M models can certify."""
    m = s["metrics"]
    clean = m.get("clean") or {}
    changed = clean.get("attack_changed_samples") or 0
    if s.get("family") == "count":
        ens = s.get("ensemble") or {}
        if ens.get("name") == "bagging":
            return []
        per = 2 if ens.get("key") == "hash" else 1
        reach = ens.get("n_parts", s["n_members"]) // 2 // per if ens.get("name") == "partition" else None
        if reach is not None and changed > reach:
            return [f"warning: {s['n_members']} parts can certify at most {reach} changed samples (key "
                    f"{ens.get('key')}); the attack changed {changed}: raise ensemble.n_parts above {2 * per * changed}"]
        return []
    cap = _radius_cap(s)
    size = m.get("attack_joint_l2_median") or 0.0
    sig = s.get("sigma") or {}
    # the sound radius is min(sigma_x, smallest training sigma) x G / 2: its largest sigma factor
    sigma = min(sig.get("test_clean", {}).get("max") or s.get("sigma_0") or 0.0, sig.get("train_min") or float("inf"))
    if cap is None or not sigma or size <= cap * sigma:
        return []
    need = _members_needed(s, size / sigma)
    if cap <= 0:
        return [f"warning: N={s['n_members']} members at alpha {s['alpha']} cannot certify any positive radius; the "
                f"attack's joint L2 {size:.3g} would need N {need} at sigma {sigma:.3g}"]
    return [f"warning: N={s['n_members']} members at alpha {s['alpha']} certify at most {cap:.3g} x sigma "
            f"({cap * sigma:.3g} at sigma {sigma:.3g}); the attack's joint L2 {size:.3g} would need sigma >= "
            f"{size / cap:.3g} at this N, or N {need} at this sigma"]


def _radius_cap(s: dict) -> float | None:
    """Largest certifiable radius over sigma: every one of N votes for one class (hard votes,
    Clopper-Pearson: pA_lower = alpha'^(1/N); soft, Hoeffding: 1 - sqrt(ln(1/alpha') / 2N))."""
    a, n = (s.get("certifier") or {}).get("alpha_per_bound"), s.get("n_members")
    if not a or not n or not math.isfinite(a):
        return None
    p = a ** (1.0 / n) if (s.get("certifier") or {}).get("mode") == "hard" else 1 - math.sqrt(math.log(1 / a) / (2 * n))
    return float(stats.norm.ppf(p)) if p > 0.5 else 0.0


def _members_needed(s: dict, ratio: float) -> str:
    """The N at which all-one-class votes certify ``ratio`` x sigma (hard votes), as text."""
    a = (s.get("certifier") or {}).get("alpha_per_bound")
    log_p = stats.norm.logcdf(ratio)  # ln Phi(ratio) < 0
    if not a or log_p >= 0 or log_p > -1e-300:
        return "beyond any number"
    n = math.log(a) / log_p
    return f"~{n:.2g}" if n < 1e15 else "beyond reach (> 1e15)"
