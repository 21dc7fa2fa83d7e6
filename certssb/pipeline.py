"""One run, top to bottom: data -> attack -> sigmas -> members -> predictions -> certificates -> outputs.

Each step is a call into its own package; this module only wires them and records timings.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from certssb import __version__
from certssb.attack import poison
from certssb.certifier import RealisedAttack
from certssb.config import RunSettings, parse_run
from certssb.dataset import load_dataset
from certssb.ensemble import (CheckpointStore, TrainingData, device_report, resolve_device, resolve_precision,
                              train_members)
from certssb.ensemble.undefended import undefended_reference
from certssb.errors import CertSSBError
from certssb.logger import open_logger
from certssb.model import model_factory
from certssb.results import certify_sets, format_table, plain_statements, write_outputs
from certssb.resume import completed_summary, data_fingerprint, member_fingerprint
from certssb.run_record import mark_running, prepare_output_dir, record_failure
from certssb.summary import Provenance, build_summary, method_name
from certssb.testsets import predicted_sets, rab_triggered
from certssb.threads import set_cpu_threads
from certssb.timing import StageTimer
from certssb.verdict import build_verdict

log = logging.getLogger("certssb")


def output_dir_from_hydra() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def run(cfg, output_dir: str | Path | None = None, progress: bool | None = None) -> dict:
    """Run the whole pipeline for one config (composed or parsed); returns the summary dict.

    Outputs go to ``output_dir`` (default: Hydra's job output dir); the logger mirrors them. A
    run that fails once started (any exception, Ctrl-C) leaves ``summary.json`` saying
    ``failed`` and why (:func:`certssb.run_record.record_failure`; the record is also attached to
    the exception) and re-raises; member checkpoints already written stay for a rerun.
    """
    settings = parse_run(cfg)
    out = Path(output_dir) if output_dir is not None else output_dir_from_hydra()
    prepare_output_dir(out)
    previous = completed_summary(out, settings)
    if previous is not None:
        log.info("%s already holds a complete run of this config; skipping (force=true reruns it)", out)
        return previous
    mark_running(out)
    try:
        with open_logger(settings, out, {"method": method_name(settings)}) as run_logger:
            summary = _run(settings, out, progress is not False)
            if summary["status"] == "complete":
                run_logger.log_summary(summary)
    except (Exception, KeyboardInterrupt) as exc:
        record_failure(out, exc)
        raise
    if summary["status"] == "complete":
        log.info("results (%s):\n%s", out, format_table(summary))
    return summary


def _run(cfg: RunSettings, out: Path, progress: bool) -> dict:
    timer, seed, ens = StageTimer(), int(cfg.seed), cfg.ensemble
    device = resolve_device(ens.device)
    torch.manual_seed(seed)
    log.info("certssb %s: %s on %s, attack %s, N=%d, device %s", __version__, method_name(cfg), cfg.dataset.name,
             cfg.attack.name, ens.n_members, device)
    with timer.stage("data"):
        splits = load_dataset(cfg.dataset, seed)
    with timer.stage("attack"):
        poisoned = poison(splits, cfg.attack, seed, cfg)
    factory = model_factory(cfg.model, splits.input_shape, splits.num_classes)
    set_cpu_threads(cfg.cpu_threads, factory, device)
    precision = resolve_precision(ens.precision, factory(), device).name
    data_fp = data_fingerprint(cfg, precision)
    device_info = device_report(device, precision, ens.deterministic)
    ckpt_root = Path(ens.checkpoint_dir) if ens.checkpoint_dir else out / "members"
    undefended = {}
    if cfg.undefended.enabled and ens.member_range is None:
        with timer.stage("undefended"):
            epochs = cfg.undefended.epochs or ens.epochs
            undefended = undefended_reference(factory, splits, poisoned, replace(ens, epochs=epochs), seed, device)
    with timer.stage("sigma"):
        sigmas = cfg.sigma_optimiser.sigmas(cfg, factory, poisoned, splits.x_test, device, ckpt_root, data_fp, progress)
    n = int(ens.n_members)
    members = range(n) if ens.member_range is None else range(*ens.member_range)
    subsets = ens.training_subsets(poisoned.x_train, poisoned.y_train, seed)  # None: every model sees every sample
    stores, trained = [], []
    with timer.stage("train"):  # one ensemble, or grid_ensembles: one per training sigma
        for train_sigmas in cfg.sigma_optimiser.ensembles(sigmas.train):
            member_fp = member_fingerprint(cfg, data_fp, train_sigmas.numpy())
            stores.append(CheckpointStore(ckpt_root / member_fp[:16], member_fp))
            data = TrainingData(poisoned.x_train, poisoned.y_train, train_sigmas, subsets)
            now = train_members(factory, data, ens, seed, members, stores[-1], device=device, progress=progress)
            trained += now
            log.info("members: %d trained now, %d reused (checkpoints in %s)", len(now), len(members) - len(now),
                     stores[-1].directory)
    store = stores[0]
    if ens.member_range is not None:
        return _members_only(out, list(members), store, trained, device_info, timer)
    for st in stores:
        _require_all_members(st, n)
    sets = predicted_sets(splits, poisoned, sigmas.test_clean, sigmas.test_triggered)
    with timer.stage("predict"):
        votes = {name: cfg.sigma_optimiser.predict(factory, stores, ts, ens, seed, device, progress)
                 for name, ts in sets.items()}
    sets["triggered"] = rab_triggered(splits, poisoned, sigmas.test_triggered)
    relabelled = torch.nonzero(poisoned.y_train != splits.y_train).flatten().numpy()
    attack = RealisedAttack(poisoned.changed_index().numpy(), poisoned.changed_delta_l2().numpy(),
                            poisoned.test_delta_l2.numpy(), relabelled)
    certificate_train_sigmas = sigmas.certificate_train_sigmas.numpy().astype(np.float64)
    with timer.stage("certify"):
        results = certify_sets(cfg, sets, votes, certificate_train_sigmas, attack,
                               poisoned.attack_labels(splits.y_test).numpy())
    if cfg.sigma_optimiser.chooses_test_sigma:  # the test sigma each input was certified with
        sigmas = replace(sigmas, test_clean=_table_sigmas(results["clean"]),
                         test_triggered=_table_sigmas(results["triggered_all"]))
    done = Provenance(undefended, trained, stores, device_info, timer.timings())
    summary = build_summary(cfg, splits, poisoned, sigmas, results, done)
    summary["certified_statement"] = plain_statements(summary)
    summary["verdict"] = build_verdict(summary)
    write_outputs(out, summary, results, sigmas.arrays() if cfg.sigma_optimiser.adds_noise else None)
    return summary


def _table_sigmas(result) -> torch.Tensor:
    return torch.from_numpy(result.table["sigma"].to_numpy().copy()).float()


def _members_only(out: Path, members: list, store, trained: list, device_info: dict, timer: StageTimer) -> dict:
    """A ``member_range`` job: members trained, nothing certified."""
    summary = {"status": "members_trained", "member_range": members, "checkpoint_dir": str(store.directory),
               "n_trained_now": len(trained), "device": device_info, "timings": timer.timings()}
    write_outputs(out, summary, None, None)
    return summary


def _require_all_members(store, n: int) -> None:
    missing = store.missing(range(n))
    if missing:
        raise CertSSBError(
            f"{len(missing)} of {n} members are missing in {store.directory}; "
            f"train them (e.g. ensemble.member_range=[{missing[0]},{missing[-1] + 1}]) before certifying"
        )
