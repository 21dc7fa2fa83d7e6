"""Run-off election (Rezaei, Banihashem, Chegini & Feizi, ICML 2023), METHOD.md 8.2 item 3,
on top of DPA (corrupted PARTS = base models) and of Finite Aggregation (corrupted BUCKETS).

Prediction (from ranks, :mod:`certssb.certifier.ranks`): round 1 takes the two classes with the
most votes (ties to the smaller index), m1 and m2; in round 2 every base model votes for the one
of the two it ranks higher; the winner has more round-2 votes, a tie goes to the smaller index.
Call the winner ``p`` and the other finalist ``s``.

Certificate: a lower bound on the number of corruptions that change the prediction, minus one
(the largest number the prediction provably survives). A changed prediction needs one of:

1. ``p`` leaves the top two: two classes c1, c2 (neither p) both get ahead of p in round 1.
   Each of the margins ``mu_i = n_p - n_ci + [ci > p]`` must fall to <= 0.
   - DPA: a corrupted model moves one vote, lowering one margin by at most 2 and both together
     by at most 3 (a vote moved from p to c1), so at least
     ``max(ceil(mu1/2), ceil(mu2/2), ceil((mu1 + mu2)/3))`` models (margins clipped at 0). This
     equals the paper's dynamic-programming table ``dp_calc.py`` (a test checks it).
   - FA: at least max(buckets for mu1, buckets for mu2, buckets for mu1 + mu2), each the
     fewest buckets whose largest per-bucket reductions reach it (as in
     :mod:`~certssb.certifier.finite_aggregation`); per model, mu_i drops by at most
     ``1 + [f = p] - [f = ci]`` and mu1 + mu2 by at most ``1 + 2 [f = p] - [f = c1] - [f = c2]``
     (unclipped margins: a margin already <= 0 may rise again, so only the sum is bounded).
2. ``p`` stays in the top two but is paired with another class c != s and c wins round 2:
   c must get ahead of s in round 1 (margin ``n_s - n_c + [c > s]``, reduced per model by at
   most ``1 + [f = s] - [f = c]``) AND win the round-2 duel against p (margin
   ``#prefer p over c - #prefer c over p + [c > p]``, reduced by at most 2 per model that
   prefers p to c): at least the max of the two counts.
3. the pair stays (p, s) and s wins round 2: case 2 with c = s, whose round-1 margin is 0.

The certificate is ``min(case 1 over pairs, cases 2-3 over c) - 1``: always >= 0 (the unchanged
ensemble predicts p). It is a lower bound, not always the exact smallest attack (each case
bounds necessary conditions one at a time); this follows the paper and its reference code
(``k1rezaei/DPA-election``: ``dpa_roe_certify.py``, ``fa_roe_certify.py``).
"""

from __future__ import annotations

import numpy as np

from .finite_aggregation import buckets_needed, check_bucket_models, incidence, per_bucket
from .ranks import check_ranks, margin, top_two

__all__ = ["roe_dpa_certificate", "roe_fa_certificate", "roe_prediction"]

_INF = np.iinfo(np.int64).max // 4


def _chunk(n_models: int, n_classes: int) -> int:
    """Inputs per block, so that the [inputs, M, C] and [inputs, C, C] arrays stay small."""
    return max(1, min(1024, 2**22 // (n_models * n_classes + n_classes * n_classes)))


def _ceil_div(a: np.ndarray, b: int) -> np.ndarray:
    return -((-a) // b)


def _election(r: np.ndarray):
    """Round-1 votes, finalists and round-2 counts for checked ranks r [m, M, C]."""
    m, n_models, n_classes = r.shape
    rows = np.arange(m)
    tops = np.argmin(r, axis=2)  # each model's vote (its rank-0 class)
    votes = np.zeros((m, n_classes), dtype=np.int64)
    np.add.at(votes, (np.repeat(rows, n_models), tops.ravel()), 1)
    m1, m2 = top_two(votes)
    for_m1 = (r[rows, :, m1] < r[rows, :, m2]).sum(axis=1)  # round-2 votes of m1
    for_m2 = n_models - for_m1
    pred = np.where(for_m1 > for_m2, m1, np.where(for_m2 > for_m1, m2, np.minimum(m1, m2)))
    sec = m1 + m2 - pred
    # prefer_pred[i, j, c]: model j ranks the winner above class c (False for c = winner)
    prefer_pred = r[rows, :, pred][:, :, None] < r
    return tops, votes, pred, sec, prefer_pred


def roe_prediction(ranks) -> np.ndarray:
    """The run-off election's prediction, int64 [m] (module docstring)."""
    return _election(check_ranks(ranks))[2].astype(np.int64)


def _duel_margin(prefer_pred: np.ndarray, pred: np.ndarray, n_models: int) -> np.ndarray:
    """Round-2 margin of the winner over every class c: #prefer p - #prefer c + [c > p], [m, C]."""
    count = prefer_pred.sum(axis=1)
    classes = np.arange(prefer_pred.shape[2])[None, :]
    return 2 * count - n_models + (classes > pred[:, None]).astype(np.int64)


def roe_dpa_certificate(ranks) -> tuple[np.ndarray, np.ndarray]:
    """DPA + run-off election from ranks int [m, M, C] (base model j = part j).

    Returns ``(prediction, parts)``, int64 [m] each: the run-off prediction, and the number of
    base models (parts) whose training sets may change arbitrarily without changing it, by the
    paper's bound (module docstring); always >= 0.
    """
    r = check_ranks(ranks)
    m, n_models, n_classes = r.shape
    pred_all = np.zeros(m, dtype=np.int64)
    parts = np.zeros(m, dtype=np.int64)
    classes = np.arange(n_classes)
    step = _chunk(n_models, n_classes)
    for lo in range(0, m, step):
        sl = slice(lo, lo + step)
        _, votes, pred, sec, prefer_pred = _election(r[sl])
        rival = classes[None, :] != pred[:, None]
        # case 1: margins of p over every class in round 1, clipped at 0
        mu = np.maximum(votes[np.arange(len(pred)), pred][:, None] - votes + (classes[None, :] > pred[:, None]), 0)
        half = _ceil_div(mu, 2)
        pair = np.maximum(np.maximum(half[:, :, None], half[:, None, :]), _ceil_div(mu[:, :, None] + mu[:, None, :], 3))
        ok = rival[:, :, None] & rival[:, None, :] & (classes[:, None] != classes[None, :])[None]
        case1 = np.where(ok, pair, _INF).min(axis=(1, 2)) if n_classes > 2 else np.full(len(pred), _INF)
        # cases 2 and 3: c gets ahead of s in round 1 (0 for c = s) and beats p in round 2
        to_sec = np.maximum(votes[np.arange(len(sec)), sec][:, None] - votes + (classes[None, :] > sec[:, None]), 0)
        to_sec[np.arange(len(sec)), sec] = 0
        duel = np.maximum(_duel_margin(prefer_pred, pred, n_models), 0)
        case23 = np.where(rival, np.maximum(_ceil_div(to_sec, 2), _ceil_div(duel, 2)), _INF).min(axis=1)
        pred_all[sl] = pred
        parts[sl] = np.minimum(case1, case23) - 1
    return pred_all, parts


def roe_fa_certificate(ranks, bucket_models) -> tuple[np.ndarray, np.ndarray]:
    """Finite Aggregation + run-off election from ranks int [m, M, C] and ``bucket_models``
    int [B, d] (see :func:`~certssb.certifier.finite_aggregation.fa_bucket_models`).

    Returns ``(prediction, buckets)``, int64 [m] each: the run-off prediction, and the number of
    buckets that may be corrupted arbitrarily without changing it, by the paper's bound (module
    docstring); in 0..B.
    """
    r = check_ranks(ranks)
    m, n_models, n_classes = r.shape
    b = check_bucket_models(bucket_models, n_models)
    inc = incidence(b, n_models)
    n_buckets = b.shape[0]
    pred_all = np.zeros(m, dtype=np.int64)
    certs = np.zeros(m, dtype=np.int64)
    step = _chunk(n_models, n_classes)
    for lo in range(0, m, step):
        sl = slice(lo, lo + step)
        tops, votes, pred, sec, prefer_pred = _election(r[sl])
        mc = len(pred)
        is_pred = (tops == pred[:, None]).astype(np.int64)
        is_sec = (tops == sec[:, None]).astype(np.int64)
        duel = _duel_margin(prefer_pred, pred, n_models)
        to_pred = np.full((mc, n_classes), _INF)  # buckets for c to get ahead of p in round 1
        best = np.full(mc, _INF)  # cases 2 and 3
        for c in range(n_classes):
            rival = pred != c
            is_c = (tops == c).astype(np.int64)
            cc = np.full(mc, c)
            to_pred[:, c] = np.where(rival, buckets_needed(margin(votes, pred, cc), per_bucket(1 + is_pred - is_c, inc)), _INF)
            round1 = np.where(sec == c, 0, buckets_needed(margin(votes, sec, cc), per_bucket(1 + is_sec - is_c, inc)))
            round2 = buckets_needed(duel[:, c], per_bucket(2 * prefer_pred[:, :, c].astype(np.int64), inc))
            best = np.minimum(best, np.where(rival, np.maximum(round1, round2), _INF))
        # case 1, pair by pair, only on the inputs where the pair could still beat the best so far
        for c1 in range(n_classes):
            for c2 in range(c1 + 1, n_classes):
                lower = np.maximum(to_pred[:, c1], to_pred[:, c2])  # _INF where c1 or c2 is p
                live = np.nonzero(lower < best)[0]
                if live.size == 0:
                    continue
                t = tops[live]
                need = margin(votes[live], pred[live], c1) + margin(votes[live], pred[live], c2)
                red = per_bucket(1 + 2 * is_pred[live] - (t == c1) - (t == c2), inc)
                best[live] = np.minimum(best[live], np.maximum(lower[live], buckets_needed(need, red)))
        pred_all[sl] = pred
        certs[sl] = np.minimum(best, n_buckets + 1) - 1
    return pred_all, certs


# ------------------------------------------------------------------------------------------------
# the option: certifier=roe

from dataclasses import dataclass  # noqa: E402
from typing import ClassVar  # noqa: E402

from .count import CountCertificate, CountCertifierSettings, to_modifications  # noqa: E402


@dataclass
class RunoffSettings(CountCertifierSettings):
    """Run-off election on the models of a partition (DPA+ROE) or Finite Aggregation (FA+ROE)
    ensemble: round 1 picks the top two classes by votes, round 2 lets every model choose between
    them by its own ranking."""

    structures: ClassVar[tuple[str, ...]] = ("parts", "buckets")
    needs_ranks: ClassVar[bool] = True

    def method_name(self, run) -> str:
        return "dpa+roe" if run.ensemble.structure == "parts" else "fa+roe"

    def certify(self, votes, ensemble, n_train: int) -> CountCertificate:
        buckets = ensemble.bucket_models()
        if buckets is None:
            prediction, units = roe_dpa_certificate(votes.ranks)
        else:
            prediction, units = roe_fa_certificate(votes.ranks, buckets)
        return CountCertificate(prediction, to_modifications(units, ensemble), units)
