"""From the members' votes to the run's certificates and files.

:func:`certify_sets` certifies the three test sets with the run's certifier, of either family
(:mod:`.gaussian`: L2 radii of feature changes with labels held; :mod:`.count`: any k changed
training samples), and adds the readings that put both on one axis (:mod:`.split`);
:func:`write_outputs` writes the files (:mod:`.outputs`). The console table and sentences are
:mod:`certssb.console`.
"""

from __future__ import annotations

import numpy as np

from certssb.certifier import RealisedAttack
from certssb.console import format_table, plain_statements  # noqa: F401  (the run's console output)

from .count import certify_count_split
from .gaussian import certify_split
from .memory import SharedMemories, flat_vectors
from .outputs import write_outputs, write_summary
from .split import SplitResult

__all__ = ["SplitResult", "certify_sets", "certify_split", "certify_count_split", "flat_vectors", "format_table",
           "plain_statements", "write_outputs", "write_summary"]

REPORT_ORDER = ("clean", "triggered", "triggered_all")


def certify_sets(run, sets: dict, votes: dict, certificate_train_sigmas: np.ndarray, attack: RealisedAttack,
                 target) -> dict[str, SplitResult]:
    """Certify ``clean``, ``triggered_all`` and ``triggered`` with ``run.certifier`` (in that order:
    with a shared memory, clean inputs are stored first, then every triggered input; the
    RAB-convention ``triggered`` set is a subset of ``triggered_all`` and reads its votes and
    memory entries). Returned in report order.

    ``target``: the attack's label per test input (``PoisonedData.attack_labels(y_test)``), or one
    class for every input; the ``triggered`` set's ASR counts predictions equal to it."""
    targets = np.broadcast_to(np.asarray(target, dtype=np.int64), attack.test_delta_l2.shape)
    votes = dict(votes)
    positions = sets["triggered"].indices  # triggered_all is indexed by the test index
    votes["triggered"] = votes["triggered_all"].subset(positions)
    cert, results = run.certifier, {}
    if cert.family == "count":
        n_train = int(np.asarray(certificate_train_sigmas).size)
        for name in ("clean", "triggered_all", "triggered"):
            ts = sets[name]
            results[name] = certify_count_split(ts, votes[name], cert, run.ensemble, attack, n_train,
                                                targets[ts.indices])
        return {name: results[name] for name in REPORT_ORDER}
    shared = None
    if cert.memory.enabled and cert.memory.shared:
        shared = SharedMemories(int(np.prod(tuple(sets["clean"].x.shape[1:]))))
    for name in ("clean", "triggered_all", "triggered"):
        ts = sets[name]
        copy_from = (results["triggered_all"], positions) if shared is not None and name == "triggered" else None
        results[name] = certify_split(ts, votes[name], certificate_train_sigmas, cert, attack, targets[ts.indices],
                                      shared=shared, copy_memory_from=copy_from)
    return {name: results[name] for name in REPORT_ORDER}
