"""The count family's retrain-and-predict runner: the clean ensemble (models trained without noise
on their parts, bucket pairs or bags) and its certificates; for one attack, only the models whose training
subsets hold a changed sample are retrained (same seeds, same subsets, a new store), every other
model is reused as it is, and the votes are recombined."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from certssb.certifier.runoff import roe_dpa_certificate, roe_fa_certificate
from certssb.config import load_option
from certssb.dataset import load_dataset
from certssb.ensemble.count import assign_buckets
from certssb.ensemble.predict import predict_models
from certssb.ensemble.train import train_members
from certssb.model import model_factory
from certssb.ensemble.training_data import TrainingData

from .config import CountFalsifyConfig
from .count_attack import (CountAttack, affected_models, bagging_samples, partition_samples, poisoned_copy,
                           runner_up)
from .session import checkpoint_store, discard

__all__ = ["CountRunner", "model_votes"]


def model_votes(ranks: np.ndarray) -> np.ndarray:
    """int64 [n, M]: each model's vote (the class it ranks first) from ``ModelVotes.ranks``."""
    return np.argmin(ranks, axis=-1).astype(np.int64)


class CountRunner:
    """Data, the clean count ensemble, its per-model votes and certificates."""

    def __init__(self, cfg: CountFalsifyConfig, workdir: Path):
        self.cfg, self.workdir = cfg, workdir
        self.timings: dict[str, float] = {}
        t0 = time.perf_counter()
        classes = None if cfg.classes is None else list(cfg.classes)
        self.splits = load_dataset(load_option("dataset", "digits", classes=classes), cfg.seed).to_float()
        self.factory = model_factory(load_option("model", "mlp", hidden=list(cfg.hidden)),
                                     tuple(self.splits.x_train.shape[1:]), self.splits.num_classes)
        self.ens, self.certifier = cfg.ensemble_cfg(), cfg.certifier_cfg()
        self.n_models = int(self.ens.n_members)
        self.subsets = self.ens.training_subsets(self.splits.x_train, self.splits.y_train, cfg.seed)
        self.bucket_models = self.ens.bucket_models() if cfg.ensemble == "finite_aggregation" else None
        if self.bucket_models is not None:  # the samples of each bucket (as training_subsets assigns them)
            bucket = assign_buckets("index", self.n_models, self.splits.x_train, self.splits.y_train, cfg.seed)
            self.buckets = [np.flatnonzero(bucket == h) for h in range(len(self.bucket_models))]
        store = self.train("clean", (self.splits.x_train, self.splits.y_train), range(self.n_models))
        self.votes = predict_models(self.factory, store, self.splits.x_test, self.ens, range(self.n_models),
                                    device=cfg.device, progress=cfg.progress)
        self.per_model = model_votes(self.votes.ranks)
        self.certificate = self.certifier.certify(self.votes, self.ens, len(self.splits.x_train))
        self.prediction = self.certificate.prediction
        self.count = self.certificate.certified_any_count
        self.timings["clean_ensemble"] = time.perf_counter() - t0

    def train(self, tag: str, data: tuple[torch.Tensor, torch.Tensor], models, changes: dict | None = None):
        """``train_members`` on ``data`` (images, labels) for ``models``, with the run's seed,
        subsets and zero sigmas (no noise), into a new store (named by ``tag`` and ``changes``,
        what the attack changed)."""
        x_train, y_train = data
        store = checkpoint_store(self.workdir, tag, {
            "tag": tag, "seed": self.cfg.seed, "ens": vars(self.ens), "hidden": list(self.cfg.hidden),
            "classes": None if self.cfg.classes is None else list(self.cfg.classes), "changes": changes})
        zeros = torch.zeros(len(x_train), dtype=torch.float32)
        train_members(
            self.factory,
            TrainingData(x_train, y_train, zeros, self.subsets),
            self.ens,
            self.cfg.seed,
            list(models),
            store,
            device=self.cfg.device,
            progress=self.cfg.progress,
        )
        return store

    def attack(self, i: int, k: int) -> CountAttack:
        """``k`` changed samples against test input ``i`` (:mod:`.count_attack`)."""
        splits, y = self.splits, int(self.prediction[i])
        target = runner_up(self.votes.votes[i], y)
        x = splits.x_test[i]
        if self.cfg.ensemble == "partition":
            voters = np.flatnonzero(self.per_model[i] == y)
            order = voters[np.argsort(self.votes.ranks[i, voters, target], kind="stable")]
            samples = partition_samples(k, [s.numpy() for s in self.subsets], order, splits.y_train,
                                        splits.x_train, x, y)
        elif self.bucket_models is not None:
            samples = partition_samples(k, self.buckets, self.bucket_order(i, y, target), splits.y_train,
                                        splits.x_train, x, y)
        else:
            samples = bagging_samples(k, splits.y_train, splits.x_train, x, y)
        return CountAttack(test_index=int(i), k=int(k), target=target, samples=samples,
                           models=affected_models(self.subsets, samples))

    def bucket_order(self, i: int, y: int, target: int) -> np.ndarray:
        """Finite Aggregation: the buckets that feed the most models voting ``y`` on input ``i`` first
        (ties: the smallest summed rank of ``target`` among the models fed, the nearest to switching)."""
        fed = self.bucket_models
        voters = (self.per_model[i][fed] == y).sum(axis=1)
        closeness = self.votes.ranks[i][fed, target].astype(np.int64).sum(axis=1)
        return np.lexsort((np.arange(len(fed)), closeness, -voters))

    def retrained_ranks(self, atk: CountAttack, tag: str) -> np.ndarray:
        """``[M, C]``: every model's class ranking on the attacked input after the attack: the
        affected models retrained on the poisoned set (same seeds and subsets), the others as they were."""
        ranks = self.votes.ranks[atk.test_index].copy()
        if not len(atk.models):
            return ranks
        x = self.splits.x_test[atk.test_index]
        xp, yp = poisoned_copy(self.splits.x_train, self.splits.y_train, atk.samples, x, atk.target)
        store = self.train(tag, (xp, yp), atk.models, {"test_index": atk.test_index, "target": atk.target,
                                                        "samples": atk.samples.tolist()})
        new = predict_models(self.factory, store, x.unsqueeze(0), self.ens, atk.models, device=self.cfg.device,
                             progress=False)
        discard(store, self.cfg.keep_checkpoints)
        ranks[atk.models] = new.ranks[0]
        return ranks

    def predict(self, ranks: np.ndarray) -> int:
        """The ensemble's prediction from one input's ``[M, C]`` rankings: the certifier's rule
        (run-off election, or the plurality of votes with ties to the smaller class)."""
        if self.cfg.certifier == "roe":
            if self.bucket_models is not None:
                return int(roe_fa_certificate(ranks[None], self.bucket_models)[0][0])
            return int(roe_dpa_certificate(ranks[None])[0][0])
        counts = np.bincount(model_votes(ranks[None])[0], minlength=ranks.shape[-1])
        return int(np.argmax(counts))

    def control_identical(self, index: np.ndarray) -> bool | None:
        """The models the first attack would retrain, retrained on the UNCHANGED data in a fresh
        store, vote as the clean ones on the attacked inputs (informational: the check reuses the
        untouched models, so its soundness does not rest on this)."""
        if not len(index):
            return None
        models = np.unique(np.concatenate([self.attack(int(i), max(1, int(self.count[i]))).models for i in index]))
        if not len(models):
            return None
        store = self.train("control", (self.splits.x_train, self.splits.y_train), models)
        again = predict_models(self.factory, store, self.splits.x_test[torch.from_numpy(index)], self.ens, models,
                               device=self.cfg.device, progress=False)
        discard(store, self.cfg.keep_checkpoints)
        return bool(np.array_equal(model_votes(again.ranks), self.per_model[np.ix_(index, models)]))

    def attacked_inputs(self) -> np.ndarray:
        """Up to ``cfg.attacks`` test inputs with a certificate of at least one sample, spread
        evenly over the certificates' range (sorted by certificate, then index)."""
        cand = np.flatnonzero(self.count >= 1)
        cand = cand[np.lexsort((cand, self.count[cand]))]
        if len(cand) <= self.cfg.attacks:
            return cand
        pick = np.unique(np.round(np.linspace(0, len(cand) - 1, int(self.cfg.attacks))).astype(np.int64))
        return cand[pick]
