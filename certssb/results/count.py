"""The count-certified family's certificates of one test set (DPA, Finite Aggregation, run-off
election, bagging; docs/METHOD.md section 8.2): each input's prediction and ``certified_any_count``,
the largest number of training samples that, changed arbitrarily (features and labels), cannot
change it. A triggered input predicted correctly with ``certified_any_count`` at least the number of
samples the attack changed is one on which the backdoor provably failed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from certssb.certifier import RealisedAttack

from .split import SplitResult, add_attack_as_run


def certify_count_split(ts, votes, certifier, ensemble, attack: RealisedAttack, n_train: int, target) -> SplitResult:
    """The certificates of one test set ``ts`` (:class:`certssb.testsets.TestSet`) from the models'
    ``votes`` (:class:`certssb.ensemble.ModelVotes`)."""
    name, indices = ts.name, ts.indices
    labels = np.asarray(ts.labels, dtype=np.int64)
    cert = certifier.certify(votes, ensemble, n_train)
    correct = cert.prediction == labels
    top = np.sort(votes.votes, axis=1)[:, ::-1]
    table = pd.DataFrame({
        "split": name,
        "index": np.asarray(indices, dtype=np.int64),
        "label": labels,
        "prediction": cert.prediction,
        "correct": correct,
        "votes_top": top[:, 0],
        "votes_second": top[:, 1] if top.shape[1] > 1 else 0,
        "certified_units": cert.units,  # parts / buckets (or samples, for bagging), in the certificate's own unit
        **cert.extra,
    })
    abstain = cert.certified_any_count < 0
    metrics = {"accuracy": float(correct.mean()) if len(correct) else None,
               "abstain_rate": float(abstain.mean()) if len(correct) else None,
               "certified_ratio": float(np.mean(~abstain & (cert.certified_any_count > 0))) if len(correct) else None}
    if name == "triggered":
        metrics["asr"] = float(np.mean(cert.prediction == target)) if len(labels) else None
    result = SplitResult(name, table, metrics, {}, votes=_vote_arrays(name, votes, certifier))
    add_attack_as_run(result, correct, cert.certified_any_count,
                      correct & (cert.certified_any_count >= attack.n_changed), n_train, attack.n_changed)
    return result


def _vote_arrays(name: str, votes, certifier) -> dict:
    """What ``votes.npz`` holds of this set: the base models' vote counts ``[n, C]`` and, for the
    certifiers that read them, every model's class ranking ``[n, M, C]``."""
    out = {name: np.asarray(votes.votes, dtype=np.int64)}
    if certifier.needs_ranks:
        out[f"{name}_ranks"] = np.asarray(votes.ranks)
    return out
