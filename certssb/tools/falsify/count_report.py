"""The count family's check end to end (:func:`run_count_falsification`) and its report.

For each attacked input with certificate c (``certified_any_count`` >= 1): k = c changed samples
(the falsification: no prediction may change), then every power count (default k = c + 1 and
2c + 2: predictions must change for some). A "flip" is a change of the ensemble's prediction (the
most votes, ties to the smaller class: DPA's prediction and bagging's class A; with
``--certifier roe`` the run-off election's prediction from the models' rankings, checked against
its own certificate under the same attack).

Bagging's certificate is probabilistic. Its attacker here does not see the bags, so the number of
models it reaches is Binomial(M, 1 - (1 - k/n)^s) over the bag draw, and the prediction can only
change when at least ``a_min`` = min over c' != y of floor(gap_c' / 2) + 1 models are reached. The
report gives, per input, ``P(Binomial >= a_min)``; their sum over the inputs bounds the expected
number of flips within the certificate (``expected_flips_at_most``). The certificate itself (the
smoothed classifier's prediction) holds with probability >= 1 - alpha.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import binom

from .config import CountFalsifyConfig, count_name
from .count_runner import CountRunner, model_votes
from .session import session, write_report

__all__ = ["CountScale", "count_summary_line", "run_count_falsification"]


@dataclass
class CountScale:
    """Every attacked input at ``k = a * c + b`` changed training samples."""

    name: str
    a: int
    b: int
    tried: int = 0
    flipped: int = 0
    expected_flips_at_most: float | None = None  # bagging: the bound above, summed over the inputs
    pairs: list = field(default_factory=list)

    def as_dict(self) -> dict:
        out = {"counts": self.name, "tried": self.tried, "flipped": self.flipped, "pairs": self.pairs}
        if self.expected_flips_at_most is not None:
            out["expected_flips_at_most"] = self.expected_flips_at_most
        return out


def flip_bound(votes_row: np.ndarray, y: int, k: int, n: int, s: int) -> tuple[int, float]:
    """Bagging, an attacker blind to the bags: (``a_min``, P(Binomial(M, 1 - (1 - k/n)^s) >= a_min))."""
    v = np.asarray(votes_row, dtype=np.int64)
    gap = v[y] - v - (np.arange(len(v)) < y).astype(np.int64)
    gap[y] = np.iinfo(np.int64).max
    a_min = int(gap.min() // 2 + 1)
    reach = 1.0 - (1.0 - k / n) ** s
    return a_min, float(binom.sf(a_min - 1, int(v.sum()), reach))


def _pair(r: CountRunner, i: int, k: int, name: str) -> dict:
    atk = r.attack(i, k)
    ranks = r.retrained_ranks(atk, f"{name}-i{i}")
    votes = model_votes(ranks[None])[0]
    counts = np.bincount(votes, minlength=r.votes.votes.shape[1])
    new = r.predict(ranks)  # the certifier's rule: plurality (ties to the smaller class) or run-off election
    clean = int(r.prediction[i])
    pair = {"test_index": int(i), "label": int(r.splits.y_test[i]), "certificate": int(r.count[i]), "k": int(k),
            "target": atk.target, "clean_prediction": clean, "new_prediction": new, "flipped": new != clean,
            "clean_votes": r.votes.votes[i].tolist(), "new_votes": counts.tolist(),
            "samples": atk.samples.tolist(), "models_retrained": int(len(atk.models)),
            "models_moved": int((votes != r.per_model[i]).sum())}
    if r.cfg.ensemble == "bagging":
        pair["a_min"], pair["p_flip_at_most"] = flip_bound(r.votes.votes[i], clean, k, len(r.splits.x_train),
                                                           int(r.ens.bag_size))
    return pair


def run_count_scale(r: CountRunner, inputs: np.ndarray, a: int, b: int) -> CountScale:
    """Attack, retrain and predict every input at ``k = a * c + b``."""
    res = CountScale(name=count_name(a, b), a=a, b=b)
    for i in inputs:
        pair = _pair(r, int(i), a * int(r.count[i]) + b, res.name)
        res.tried += 1
        res.flipped += int(pair["flipped"])
        res.pairs.append(pair)
    if r.cfg.ensemble == "bagging":
        res.expected_flips_at_most = float(sum(p["p_flip_at_most"] for p in res.pairs))
    return res


def _clean_section(r: CountRunner) -> dict:
    correct = r.prediction == r.splits.y_test.numpy()
    certified = r.count >= 1
    return {"accuracy": float(np.mean(correct)), "n_models": r.n_models,
            "certified_fraction": float(np.mean(certified)),
            "certificate_median": int(np.median(r.count[certified])) if certified.any() else 0,
            "certificate_max": int(r.count.max()) if len(r.count) else 0}


def _report(r: CountRunner, cfg: CountFalsifyConfig, results: tuple, control, seconds: float) -> dict:
    within, power = results
    own = {"partition": "dpa", "finite_aggregation": "fa"}.get(cfg.ensemble, "bagging")
    report = {
        "family": "count", "defence": f"{own}+roe" if cfg.certifier == "roe" else own,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()},
        "dataset": {"n_train": int(len(r.splits.x_train)), "n_test": int(len(r.splits.y_test)),
                    "classes": None if cfg.classes is None else list(cfg.classes)},
        "clean": _clean_section(r),
        "control_votes_identical": control,
        "within": within.as_dict(),
        "power": [p.as_dict() for p in power],
        "timings": {**{k: round(v, 2) for k, v in r.timings.items()}, "total": round(seconds, 2)},
    }
    if cfg.ensemble == "bagging":
        report["alpha"] = cfg.alpha
    report["summary"] = count_summary_line(report)
    return report


def run_count_falsification(cfg: CountFalsifyConfig, out: Path | None = None, workdir: Path | None = None) -> dict:
    """Run the count family's check; returns (and with ``out`` writes ``out/falsify.json``) the report."""
    cfg.validate()
    t_start = time.perf_counter()
    with session(cfg.threads, out, workdir) as work:
        r = CountRunner(cfg, work)
        inputs = r.attacked_inputs()
        t0 = time.perf_counter()
        control = r.control_identical(inputs[:3])
        r.timings["control"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        within = run_count_scale(r, inputs, 1, 0)
        r.timings["within"] = time.perf_counter() - t0
        power = []
        for a, b in cfg.counts():
            t0 = time.perf_counter()
            power.append(run_count_scale(r, inputs, a, b))
            r.timings[f"power_{count_name(a, b)}"] = time.perf_counter() - t0
        report = _report(r, cfg, (within, power), control, time.perf_counter() - t_start)
    write_report(report, out)
    return report


def count_summary_line(report: dict) -> str:
    """``falsification: tried=<n> flipped=<m> (k <= certificate); power check: tried=<n> flipped=<m> (k = <k>)``."""
    w = report["within"]
    text = f"falsification: tried={w['tried']} flipped={w['flipped']} (k <= certificate)"
    if report["power"]:
        p = report["power"][-1]
        text += f"; power check: tried={p['tried']} flipped={p['flipped']} (k = {p['counts']})"
    return text
