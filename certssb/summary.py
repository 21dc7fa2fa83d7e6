"""The run's ``summary.json``: headline metrics, per-set metrics and curves, provenance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from certssb import __version__
from certssb.config import RunSettings
from certssb.resume import config_fingerprint
from certssb.sigma_optimiser import sigma_stats


def method_name(run: RunSettings) -> str:
    """``rab``, ``cert-ssb``, ``cert-ssb-grid``, ... (the Gaussian family: the sigma optimiser's),
    ``dpa``, ``fa``, ``dpa+roe``, ``bagging`` (the count family: the certifier's)."""
    return run.certifier.method_name(run)


@dataclass
class Provenance:
    """How a run was executed: the undefended reference's metrics, the members trained now, their
    checkpoint stores (one per ensemble), the device and the stage timings."""

    undefended: dict
    trained: list
    stores: list
    device: dict
    timings: dict


def build_summary(run: RunSettings, splits, poisoned, sigmas, results: dict, done: Provenance) -> dict:
    """Everything a complete run reports (keys documented in docs/outputs.md)."""
    y_test = splits.y_test.numpy()
    joint_l2 = poisoned.joint_l2().numpy().astype(np.float64)
    metrics = {
        "clean_accuracy": results["clean"].metrics["accuracy"],
        "asr": results["triggered"].metrics["asr"],
        **done.undefended,
        "attack_joint_l2": float(joint_l2.max()) if len(joint_l2) else 0.0,
        "attack_joint_l2_median": float(np.median(joint_l2)) if len(joint_l2) else 0.0,
    }
    for name, res in results.items():
        metrics[name] = res.metrics
    stores = done.stores
    return {
        "status": "complete",
        "config_fingerprint": config_fingerprint(run),
        "certssb_version": __version__,
        "method": method_name(run),
        "family": run.certifier.family,
        "seed": int(run.seed),
        "n_members": int(run.ensemble.n_members),
        "sigma_0": run.sigma_optimiser.recorded_sigma_0(),
        "alpha": run.certifier.alpha_or_none(),
        "certifier": {**run.certifier.results_plain(), "alpha_per_bound": results["clean"].alpha_per_bound},
        "ensemble": {**run.ensemble.results_plain(), "family": run.ensemble.family},
        "dataset": {"name": splits.name, "n_train": len(splits.x_train), "n_test": len(y_test),
                    "num_classes": splits.num_classes, "class_names": list(splits.class_names)},
        "attack": _attack(run, poisoned, y_test, splits),
        "sigma": _sigma(run, sigmas, results),
        "metrics": metrics,
        "curves": {name: res.curves for name, res in results.items()},
        "memory": {name: res.memory for name, res in results.items() if res.memory},
        "members": {"trained_now": len(done.trained), "checkpoint_dir": str(stores[0].directory),
                    **({"checkpoint_dirs": [str(st.directory) for st in stores]} if len(stores) > 1 else {})},
        "device": done.device,
        "timings": done.timings,
    }


def _attack(run: RunSettings, poisoned, y_test, splits) -> dict:
    relabelled = int((poisoned.y_train != splits.y_train).sum())
    return {"name": run.attack.name, "target": int(poisoned.target), "policy": poisoned.policy,
            "n_poisoned": poisoned.num_poisoned, "n_cross": int(poisoned.cross_index.numel()),
            "n_relabelled": relabelled, "relabels": relabelled > 0,
            "train_delta_l2_sum_sq": float((poisoned.train_delta_l2.double() ** 2).sum()
                                           + (poisoned.cross_delta_l2.double() ** 2).sum()),
            "test_delta_l2_median": float(poisoned.test_delta_l2.median()) if len(y_test) else 0.0}


def _sigma(run: RunSettings, sigmas, results: dict) -> dict:
    sig = run.sigma_optimiser
    return {"optimiser": sig.name,
            "train_min": float(sigmas.certificate_train_sigmas.min()),  # what the certificate uses
            "trained_min": float(sigmas.train.min()),
            "certificate_data_independent": sig.data_independent(),
            **sig.summary_fields(results["clean"].alpha_per_bound),
            "train": sigma_stats(sigmas.train), "test_clean": sigma_stats(sigmas.test_clean),
            "test_triggered": sigma_stats(sigmas.test_triggered)}
