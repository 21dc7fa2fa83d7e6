"""The run's ``summary.json``: headline metrics, per-set metrics and curves, provenance."""

from __future__ import annotations

import numpy as np

from certssb import __version__
from certssb.config import RunSettings, to_plain
from certssb.resume import config_fingerprint
from certssb.sigma_optimiser import sigma_stats


def method_name(run: RunSettings) -> str:
    """``rab``, ``cert-ssb``, ``cert-ssb-joint``, ``cert-ssb-grid``, ... (the sigma optimiser's)."""
    return run.sigma_optimiser.method_name()


def build_summary(run: RunSettings, splits, poisoned, sigmas, results: dict, undefended: dict,
                  joint_l2: np.ndarray, trained: list, stores, device: dict, timings: dict) -> dict:
    """Everything a complete run reports (keys documented in README, "Reading the results")."""
    y_test = splits.y_test.numpy()
    metrics = {
        "clean_accuracy": results["clean"].metrics["accuracy"],
        "asr": results["triggered"].metrics["asr"],
        **undefended,
        "attack_joint_l2": float(joint_l2.max()) if len(joint_l2) else 0.0,
        "attack_joint_l2_median": float(np.median(joint_l2)) if len(joint_l2) else 0.0,
    }
    for name, res in results.items():
        metrics[name] = res.metrics
    stores = list(stores) if isinstance(stores, (list, tuple)) else [stores]  # one store per ensemble
    return {
        "status": "complete",
        "config_fingerprint": config_fingerprint(run),
        "certssb_version": __version__,
        "method": method_name(run),
        "seed": int(run.seed),
        "n_members": int(run.ensemble.n_members),
        "sigma_0": run.sigma_optimiser.recorded_sigma_0(),
        "alpha": float(run.certifier.alpha),
        "certifier": {"name": run.certifier.name, "mode": run.certifier.mode, "grid_select": run.certifier.grid_select,
                      "alpha_per_bound": results["clean"].alpha_per_bound,
                      "memory": to_plain(run.certifier.memory)},
        "dataset": {"name": splits.name, "n_train": len(splits.x_train), "n_test": len(y_test),
                    "num_classes": splits.num_classes, "class_names": list(splits.class_names)},
        "attack": {"name": run.attack.name, "target": int(poisoned.target), "policy": poisoned.policy,
                   "n_poisoned": poisoned.num_poisoned, "n_cross": int(poisoned.cross_index.numel()),
                   "train_delta_l2_sum_sq": float((poisoned.train_delta_l2.double() ** 2).sum()
                                                  + (poisoned.cross_delta_l2.double() ** 2).sum()),
                   "test_delta_l2_median": float(poisoned.test_delta_l2.median()) if len(y_test) else 0.0},
        "sigma": {"optimiser": run.sigma_optimiser.name,
                  "train_min": float(sigmas.certificate_train_sigmas.min()),  # what the certificate uses
                  "trained_min": float(sigmas.train.min()),
                  "certificate_data_independent": run.sigma_optimiser.data_independent(),
                  **run.sigma_optimiser.summary_fields(results["clean"].alpha_per_bound),
                  "train": sigma_stats(sigmas.train), "test_clean": sigma_stats(sigmas.test_clean),
                  "test_triggered": sigma_stats(sigmas.test_triggered)},
        "metrics": metrics,
        "curves": {name: res.curves for name, res in results.items()},
        "memory": {name: res.memory for name, res in results.items() if res.memory},
        "members": {"trained_now": len(trained), "checkpoint_dir": str(stores[0].directory),
                    **({"checkpoint_dirs": [str(st.directory) for st in stores]} if len(stores) > 1 else {})},
        "device": device,
        "timings": timings,
    }
