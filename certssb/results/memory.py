"""The storage-update memory of a test set's Gaussian certificates (docs/METHOD.md section 3, step 4):
one memory per radius variant, run in a fixed, logged order; each set gets its own, or
(``certifier.memory.shared``) one serves every set."""

from __future__ import annotations

import numpy as np

from certssb.certifier import (CentreStore, CertifiedMemory, certified_accuracy_curve, covered_after_memory,
                               covered_fraction, poison_certified_accuracy, poison_count_after_memory, processing_order,
                               storage_update)
from certssb.dataset.batched import as_images

from .split import SplitResult, coverage_entries, median_count

# Radius variants the storage-update memory is run for (distances live in raw input space,
# so the whitened ``budget`` has no memory counterpart).
MEMORY_VARIANTS = ("joint", "paper")


class SharedMemories:
    """The storage-update memories of the radius variants, one per variant over one store of
    centres (the variants add the same inputs in the same order). Each test set gets its own,
    or (``certifier.memory.shared``) one serves every test set."""

    def __init__(self, dim: int, capacity: int = 1024) -> None:
        centres = CentreStore(dim, capacity)
        self.memories = {v: CertifiedMemory(dim, capacity, centres=centres) for v in MEMORY_VARIANTS}


def flat_vectors(x) -> np.ndarray:
    """Inputs as ``[m, d]`` vectors for the storage-update memory: an array as it is; images
    (``BatchedImages`` or a float tensor ``[m, C, H, W]``) read batch by batch, in the batches'
    own float32 (exact: no float64 copy of the whole set)."""
    if isinstance(x, np.ndarray):
        return x.reshape(len(x), -1)
    parts = [b.reshape(len(b), -1).numpy() for b in as_images(x).batches(1024)]
    return np.concatenate(parts) if parts else np.zeros((0, int(np.prod(x.shape[1:]))), dtype=np.float32)


def _stored(result, x, c, variant, order, shared, own, copy_memory_from):
    """(label, radius, action) of every input after the memory of ``variant``."""
    key = f"{variant}_memory"
    if copy_memory_from is not None:  # entries of a shared memory, stored with another set
        source, positions = copy_memory_from
        src = source.table.iloc[positions]
        return (src[f"prediction_{key}"].to_numpy(), src[f"radius_{key}"].to_numpy(),
                src[f"action_{key}"].to_numpy())
    mem = (shared if shared is not None else own).memories[variant]
    res = storage_update(x, result.table["prediction"].to_numpy(), c.radii[variant], order, memory=mem)
    return res.label, res.radius, res.action


def run_memories(result, x, c, cert, attack, target, shared=None, copy_memory_from=None) -> np.ndarray:
    """Run the memory of every variant over ``result``'s set, adding its columns, curves and
    metrics; returns the ``joint`` memory's coverage of the trigger features (see
    :func:`memory_readings`).

    ``shared``: one :class:`SharedMemories` for every set; ``copy_memory_from``: ``(result,
    positions)`` of the set whose shared-memory entries these inputs are (the RAB-convention
    ``triggered`` set reads those of ``triggered_all``).
    """
    table, curves, metrics = result.table, result.curves, result.metrics
    labels, name = table["label"].to_numpy(), result.name
    order = processing_order(len(labels), str(cert.memory.order), int(cert.memory.order_seed))
    result.memory = {"order": str(cert.memory.order), "order_seed": int(cert.memory.order_seed),
                     "shared": bool(cert.memory.shared), "processing_order_first": order[:20].tolist()}
    own = None
    if copy_memory_from is None:
        x = flat_vectors(x)
        if shared is None:  # this set's memories: one store of centres for the variants
            own = SharedMemories(int(np.prod(np.shape(x)[1:])) if len(labels) else 1, max(len(labels), 1))
    features = None
    for variant in MEMORY_VARIANTS:
        key = f"{variant}_memory"
        label_m, radius_m, action_m = _stored(result, x, c, variant, order, shared, own, copy_memory_from)
        correct_m = label_m == labels
        table[f"prediction_{key}"] = label_m
        table[f"radius_{key}"] = radius_m
        table[f"action_{key}"] = action_m
        table[f"correct_{key}"] = correct_m
        curves["certified_accuracy"][key] = certified_accuracy_curve(correct_m, radius_m, curves["radii"]).tolist()
        metrics["acr_by_variant"][key] = float(np.mean(radius_m * correct_m))
        if variant == "joint":  # the attacker's-terms certificates are reported for the sound variant only
            features = memory_readings(result, c, attack, action_m, radius_m, correct_m)
        result.memory[variant] = {"n_trimmed": int(np.sum(action_m == "trimmed")),
                                  "n_relabelled": int(np.sum(action_m == "relabelled")),
                                  "accuracy": float(correct_m.mean()) if len(labels) else None}
        if name == "triggered":
            metrics.setdefault("asr_memory", {})[variant] = float(np.mean(label_m == target))
    table["memory_position"] = (copy_memory_from[0].table["memory_position"].to_numpy()[copy_memory_from[1]]
                                if copy_memory_from is not None else np.argsort(order))
    return features


def memory_readings(result: SplitResult, c, attack, action, radius_m, correct_m) -> np.ndarray:
    """The sound (``joint``) memory's readings in the attacker's terms: coverage of the realised
    attack (as run; the trigger features alone for an attack that relabelled) and the certified
    poisoned-sample count (labels unchanged) of the final, possibly trimmed or relabelled, certificate.
    Returns whether the trigger features alone are covered (the as-run coverage where labels were kept)."""
    table, curves, metrics = result.table, result.curves, result.metrics
    budget, sig, r_joint = c.radii["budget"], c.sigmas, c.radii["joint"]
    test_delta = attack.test_delta_l2[table["index"].to_numpy()]
    joint_l2 = table["attack_joint_l2"].to_numpy()
    features_m = covered_after_memory(action, r_joint, radius_m, budget, c.whitened, test_delta, joint_l2)
    eps, eta = c.sizes.eps, c.sizes.eta
    count_m = c.by_train(lambda m, ts: poison_count_after_memory(action[m], r_joint[m], radius_m[m], budget[m], sig[m],
                                                                 ts, eps, eta))
    table["covered_exact_joint_memory"] = features_m & (not attack.relabels)
    table["certified_poison_count_joint_memory"] = count_m
    metrics["covered_fraction"].update(coverage_entries(attack, features_m, covered_fraction(radius_m, joint_l2),
                                                         "_memory"))
    metrics["poison_count_median_memory"] = median_count(correct_m, count_m)
    pc = curves["poison_count"]
    pc["certified_accuracy"]["joint_memory"] = poison_certified_accuracy(correct_m, count_m, pc["counts"]).tolist()
    pc["certified_accuracy_at_n_poisoned"]["joint_memory"] = float(
        poison_certified_accuracy(correct_m, count_m, [attack.poisoned_index.size])[0])
    return features_m
