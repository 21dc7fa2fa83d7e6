"""One run, top to bottom: data -> attack -> sigmas -> ensemble -> certificates -> results.

Each step is a call into its own package; this module only wires them and records timings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from certssb import __version__
from certssb.attack import poison
from certssb.attack.build import effective_attack
from certssb.config import to_plain
from certssb.dataset import load_dataset
from certssb.ensemble import (CheckpointStore, MemberVotes, fingerprint_of, predict_members, predict_single,
                              resolve_device, resolve_precision, train_members, train_single)
from certssb.errors import CertSSBError
from certssb.model import model_factory
from certssb.logger import open_logger
from certssb.results import SharedMemories, certify_split, format_table, write_outputs
from certssb.run_record import mark_running, prepare_output_dir, read_summary
from certssb.sigma_optimiser import cache as sigma_cache
from certssb.sigma_optimiser import optimise_sigmas, sigma_stats
from certssb.timing import StageTimer

log = logging.getLogger("certssb")


@dataclass
class TestSet:
    """Inputs certified together: ``indices`` index the test set (they key the test noise)."""

    name: str
    x: torch.Tensor
    labels: np.ndarray
    indices: np.ndarray
    sigmas: torch.Tensor


SMALL_MODEL_PARAMS = 200_000


def set_cpu_threads(setting, factory, device: torch.device) -> None:
    """``auto``: one torch thread for small models on the CPU (thread hand-offs cost more than
    they save there); an integer sets the count; ``null`` keeps torch's default."""
    if device.type != "cpu" or setting is None:
        return
    if str(setting) == "auto":
        n_params = sum(p.numel() for p in factory().parameters())
        if n_params < SMALL_MODEL_PARAMS:
            torch.set_num_threads(1)
        return
    torch.set_num_threads(max(1, int(setting)))


def _subset_votes(votes: MemberVotes, positions: np.ndarray) -> MemberVotes:
    return MemberVotes(prob_sum=votes.prob_sum[positions], votes=votes.votes[positions], n_members=votes.n_members)


def output_dir_from_hydra() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def method_name(cfg: DictConfig) -> str:
    """``rab`` for a fixed sigma, ``cert-ssb`` for per-sample sigmas (``released`` rule noted)."""
    name = cfg.sigma_optimiser.name
    return {"fixed": "rab", "sga": "cert-ssb", "released": "cert-ssb-released"}[name]


def _ensemble_train_cfg(cfg: DictConfig, epochs: int | None = None) -> DictConfig:
    ens = OmegaConf.to_container(cfg.ensemble, resolve=True)
    if epochs is not None:
        ens["epochs"] = int(epochs)
    return OmegaConf.create(ens)


@dataclass
class Sigmas:
    """Per-sample noise levels, held fixed for the rest of the run."""

    train: torch.Tensor
    test_clean: torch.Tensor
    test_triggered: torch.Tensor  # of every test input with the trigger (triggered_all order)


def _training_settings(cfg: DictConfig) -> dict:
    """The ensemble keys that change a trained model (fingerprints of sigmas and members)."""
    ens = to_plain(cfg.ensemble)
    return {k: ens[k] for k in ("epochs", "batch_size", "lr")}


def _sigmas(cfg, factory, poisoned, x_test, device, cache_dir: Path, data_fp: dict, progress: bool) -> Sigmas:
    """Per-sample sigmas for the training set, the clean and the triggered test inputs.

    SGA sigmas are cached next to the member checkpoints, keyed by everything they depend on.
    """
    sig = cfg.sigma_optimiser
    n_train, n_test = len(poisoned.x_train), len(x_test)
    if sig.name == "fixed":
        s0 = float(sig.sigma_0)
        return Sigmas(torch.full((n_train,), s0), torch.full((n_test,), s0), torch.full((n_test,), s0))
    fp = fingerprint_of({"data": data_fp, "sigma": to_plain(sig), "model": to_plain(cfg.model),
                         "ensemble": _training_settings(cfg)})
    cache = sigma_cache.cache_path(cache_dir, fp)
    cached = sigma_cache.load_sigmas(cache, fp, {"train": n_train, "test_clean": n_test, "test_triggered": n_test})
    if cached is not None:
        return Sigmas(*(torch.from_numpy(cached[p]) for p in sigma_cache.PARTS))
    epochs = sig.surrogate_epochs if sig.surrogate_epochs is not None else cfg.ensemble.epochs
    log.info("training the surrogate (sigma_0=%.3g, %d epochs) for %s", sig.sigma_0, epochs, sig.name)
    surrogate = train_single(factory, poisoned.x_train, poisoned.y_train, float(sig.sigma_0),
                             _ensemble_train_cfg(cfg, epochs), cfg.seed, "surrogate", device)
    out = []
    for purpose, x in (("train", poisoned.x_train), ("test-clean", x_test),
                       ("test-triggered", poisoned.x_test_triggered)):
        log.info("optimising sigma (%s) for %d %s inputs", sig.name, len(x), purpose)
        out.append(optimise_sigmas(sig, surrogate, x, cfg.seed, purpose, device=device, progress=progress).float())
    sigma_cache.save_sigmas(cache, fp, {p: t.numpy() for p, t in zip(sigma_cache.PARTS, out)})
    return Sigmas(*out)


def run(cfg: DictConfig, output_dir: str | Path | None = None, progress: bool | None = None) -> dict:
    """Run the whole pipeline for one composed config; returns the summary dict.

    Outputs go to ``output_dir`` (default: Hydra's job output dir); the logger mirrors them.
    """
    out = Path(output_dir) if output_dir is not None else output_dir_from_hydra()
    prepare_output_dir(out)
    previous = completed_summary(out, cfg)
    if previous is not None:
        log.info("%s already holds a complete run of this config; skipping (force=true reruns it)", out)
        return previous
    mark_running(out)
    with open_logger(cfg, out, {"method": method_name(cfg)}) as run_logger:
        summary = _run(cfg, out, progress)
        if summary["status"] == "complete":
            run_logger.log_summary(summary)
    if summary["status"] == "complete":
        log.info("results (%s):\n%s", out, format_table(summary))
    return summary


def config_fingerprint(cfg: DictConfig) -> str:
    """Fingerprint of what determines the results (not logging or execution settings)."""
    plain = to_plain(cfg)
    plain["attack"] = effective_attack(plain["attack"])  # e.g. attack.delta does not change badnets
    plain.pop("logger", None)
    plain.pop("force", None)
    for key in ("device", "vectorise", "group_size", "eval_batch_size", "checkpoint_dir"):
        plain.get("ensemble", {}).pop(key, None)
    plain.get("sigma_optimiser", {}).pop("device", None)
    return fingerprint_of(plain)


def completed_summary(out: Path, cfg: DictConfig) -> dict | None:
    """The summary already in ``out`` if it is complete and of the same config (sweep resume)."""
    if cfg.force:
        return None
    summary = read_summary(out / "summary.json")
    if summary is None:
        return None
    if summary.get("status") == "complete" and summary.get("config_fingerprint") == config_fingerprint(cfg):
        return summary
    return None


def _run(cfg: DictConfig, out: Path, progress: bool | None) -> dict:
    timer = StageTimer()
    seed = int(cfg.seed)
    device = resolve_device(cfg.ensemble.device)
    torch.manual_seed(seed)
    method = method_name(cfg)
    log.info("certssb %s: %s on %s, attack %s, N=%d, device %s", __version__, method, cfg.dataset.name,
             cfg.attack.name, cfg.ensemble.n_members, device)

    with timer.stage("data"):
        splits = load_dataset(cfg.dataset, seed)
    with timer.stage("attack"):
        poisoned = poison(splits, cfg.attack, seed)
    input_shape = tuple(splits.x_train.shape[1:])
    factory = model_factory(cfg.model, input_shape, splits.num_classes)
    set_cpu_threads(cfg.get("cpu_threads", "auto"), factory, device)
    # The resolved precision (fp32 / bf16, channels-last) changes the trained models.
    precision = resolve_precision(cfg.ensemble, factory(), device).name
    data_fp = {"dataset": to_plain(cfg.dataset), "attack": to_plain(cfg.attack), "seed": seed,
               "precision": precision}
    ckpt_root = Path(cfg.ensemble.checkpoint_dir) if cfg.ensemble.checkpoint_dir else out / "members"
    target = int(cfg.attack.target)
    y_test = splits.y_test.numpy()

    # The undefended reference: one model, no noise, on the poisoned set.
    undefended = {}
    if cfg.undefended.enabled and cfg.ensemble.member_range is None:
        with timer.stage("undefended"):
            model = train_single(factory, poisoned.x_train, poisoned.y_train, 0.0,
                                 _ensemble_train_cfg(cfg, cfg.undefended.epochs), seed, "undefended", device)
            pred_clean = predict_single(model, splits.x_test, cfg.ensemble.eval_batch_size, device)
            pred_trig = predict_single(model, poisoned.x_test_triggered, cfg.ensemble.eval_batch_size, device)
            non_target = y_test != target
            undefended = {
                "undefended_clean_accuracy": float(np.mean(pred_clean == y_test)),
                "undefended_asr": float(np.mean(pred_trig[non_target] == target)) if non_target.any() else None,
            }

    with timer.stage("sigma"):
        sigmas = _sigmas(cfg, factory, poisoned, splits.x_test, device, ckpt_root, data_fp, progress is not False)
    sig_train, sig_clean, sig_trig = sigmas.train, sigmas.test_clean, sigmas.test_triggered
    member_fp = fingerprint_of({
        "data": data_fp, "model": to_plain(cfg.model),
        "ensemble": _training_settings(cfg),
        "sigma_train": fingerprint_of(np.round(sig_train.numpy().astype(np.float64), 7).tolist()),
    })
    store = CheckpointStore(ckpt_root / member_fp[:16], member_fp)

    n = int(cfg.ensemble.n_members)
    members = range(n) if cfg.ensemble.member_range is None else range(*cfg.ensemble.member_range)
    with timer.stage("train"):
        trained = train_members(factory, poisoned.x_train, poisoned.y_train, sig_train, cfg.ensemble, seed,
                                members, store, device=device, progress=progress is not False)
    log.info("members: %d trained now, %d reused (checkpoints in %s)", len(trained), len(members) - len(trained),
             store.directory)
    if cfg.ensemble.member_range is not None:
        summary = {"status": "members_trained", "member_range": list(members), "checkpoint_dir": str(store.directory),
                   "n_trained_now": len(trained), "timings": timer.timings()}
        write_outputs(out, summary, None, None)
        return summary
    missing = store.missing(range(n))
    if missing:
        raise CertSSBError(f"{len(missing)} of {n} members are missing in {store.directory}; "
                           f"train them (e.g. ensemble.member_range=[{missing[0]},{missing[-1] + 1}]) before certifying")

    all_idx = np.arange(len(y_test))
    non_target_idx = all_idx[y_test != target]
    sets = {
        "clean": TestSet("clean", splits.x_test, y_test, all_idx, sig_clean),
        "triggered_all": TestSet("triggered_all", poisoned.x_test_triggered, np.full_like(y_test, target), all_idx,
                                 sig_trig),
    }
    votes = {}
    with timer.stage("predict"):
        for name, ts in sets.items():
            votes[name] = predict_members(factory, store, ts.x, ts.sigmas, torch.from_numpy(ts.indices), cfg.ensemble,
                                          seed, range(n), device=device, progress=progress is not False)
    # Convention (a), RAB: non-target inputs with the trigger and their TRUE labels.
    sets["triggered"] = TestSet("triggered", poisoned.x_test_triggered[non_target_idx], y_test[non_target_idx],
                                non_target_idx, sig_trig[non_target_idx])
    votes["triggered"] = _subset_votes(votes["triggered_all"], non_target_idx)

    joint_l2 = poisoned.joint_l2().numpy().astype(np.float64)
    sigma_train_min = float(sig_train.min())
    with timer.stage("certify"):
        results = {}
        shared = None
        if cfg.certifier.memory.enabled and cfg.certifier.memory.shared:
            shared = SharedMemories(int(np.prod(input_shape)))
        # With a shared memory, clean inputs are stored first, then every triggered input; the
        # RAB-convention triggered set is a subset of triggered_all and reads its entries.
        for name in ("clean", "triggered_all", "triggered"):
            ts = sets[name]
            copy_from = (results["triggered_all"], non_target_idx) if shared is not None and name == "triggered" else None
            results[name] = certify_split(
                name, ts.x.reshape(len(ts.x), -1).numpy().astype(np.float64), ts.labels, ts.indices, votes[name],
                ts.sigmas.numpy().astype(np.float64), sigma_train_min, cfg.certifier, joint_l2[ts.indices],
                target, shared=shared, copy_memory_from=copy_from)
        results = {name: results[name] for name in ("clean", "triggered", "triggered_all")}

    metrics = {
        "clean_accuracy": results["clean"].metrics["accuracy"],
        "asr": results["triggered"].metrics["asr"],
        **undefended,
        "attack_joint_l2": float(joint_l2.max()) if len(joint_l2) else 0.0,
        "attack_joint_l2_median": float(np.median(joint_l2)) if len(joint_l2) else 0.0,
    }
    for name, res in results.items():
        metrics[name] = res.metrics
    summary = {
        "status": "complete",
        "config_fingerprint": config_fingerprint(cfg),
        "certssb_version": __version__,
        "method": method,
        "seed": seed,
        "n_members": n,
        "sigma_0": float(cfg.sigma_optimiser.sigma_0),
        "alpha": float(cfg.certifier.alpha),
        "certifier": {"name": cfg.certifier.name, "mode": cfg.certifier.mode,
                      "alpha_per_bound": results["clean"].alpha_per_bound,
                      "memory": to_plain(cfg.certifier.memory)},
        "dataset": {"name": splits.name, "n_train": len(splits.x_train), "n_test": len(y_test),
                    "num_classes": splits.num_classes, "class_names": list(splits.class_names)},
        "attack": {"name": cfg.attack.name, "target": target, "n_poisoned": int(len(poisoned.poisoned_index)),
                   "train_delta_l2_sum_sq": float((poisoned.train_delta_l2.double() ** 2).sum()),
                   "test_delta_l2_median": float(poisoned.test_delta_l2.median()) if len(y_test) else 0.0},
        "sigma": {"optimiser": cfg.sigma_optimiser.name, "train_min": sigma_train_min,
                  "train": sigma_stats(sig_train), "test_clean": sigma_stats(sig_clean),
                  "test_triggered": sigma_stats(sig_trig)},
        "metrics": metrics,
        "curves": {name: res.curves for name, res in results.items()},
        "memory": {name: res.memory for name, res in results.items() if res.memory},
        "members": {"trained_now": len(trained), "checkpoint_dir": str(store.directory)},
        "timings": timer.timings(),
    }
    sigma_arrays = {"train": sig_train.numpy(), "test_clean": sig_clean.numpy(), "test_triggered": sig_trig.numpy()}
    write_outputs(out, summary, results, sigma_arrays)
    return summary
