"""Fingerprints of what determines results, and the resume of completed runs.

A job whose output dir already holds a complete ``summary.json`` of the same config fingerprint is
skipped (so rerunning a sweep resumes it); member checkpoints and cached sigmas live in folders
named by the fingerprints of what trained them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from certssb.config import GROUPS, RunSettings, to_plain
from certssb.ensemble.checkpoints import fingerprint_of
from certssb.run_record import read_summary

log = logging.getLogger("certssb")

def config_fingerprint(run: RunSettings) -> str:
    """Fingerprint of what determines the results (not logging or execution settings: each
    option's ``execution_keys``)."""
    plain = to_plain(run)
    plain.pop("logger", None)
    plain.pop("force", None)
    plain.pop("optimized_metric", None)  # what a sweeper reads from the summary, not what it holds
    for group in GROUPS:
        if group in plain and group != "logger":
            plain[group] = to_plain(run.option(group).results_plain())
    return fingerprint_of(plain)


def training_settings(run: RunSettings) -> dict:
    """The ensemble keys that change a trained model (fingerprints of sigmas and members)."""
    ens = to_plain(run.ensemble)
    out = {k: ens[k] for k in ("epochs", "batch_size", "lr")}
    if ens.get("shuffle", "host") != "host":  # the device shuffle trains other models (host: as before the key)
        out["shuffle"] = ens["shuffle"]
    return out


def data_fingerprint(run: RunSettings, precision: str) -> dict:
    """What the poisoned data (and the models trained on it) depend on."""
    return {"dataset": to_plain(run.dataset), "attack": to_plain(run.attack), "seed": int(run.seed),
            "precision": precision}


def member_fingerprint(run: RunSettings, data_fp: dict, sigma_train) -> str:
    """Fingerprint of the members: data, model, training settings, the training sigmas and what
    the ensemble option says identifies its models (a partition, the bags; nothing for members
    with noise, whose fingerprint is unchanged by it)."""
    fp = {"data": data_fp, "model": to_plain(run.model), "ensemble": training_settings(run),
          "sigma_train": fingerprint_of(np.round(np.asarray(sigma_train, dtype=np.float64), 7).tolist())}
    models = run.ensemble.models_fingerprint()
    if models:
        fp["models"] = models
    return fingerprint_of(fp)


def completed_summary(out: Path, run: RunSettings) -> dict | None:
    """The summary already in ``out`` if it is complete and of the same config (sweep resume)."""
    if run.force:
        return None
    summary = read_summary(out / "summary.json")
    if summary is None:
        return None
    if summary.get("status") == "complete" and summary.get("config_fingerprint") == config_fingerprint(run):
        return summary
    return None
