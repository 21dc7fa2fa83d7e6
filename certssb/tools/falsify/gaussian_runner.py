"""The Gaussian family's retrain-and-predict runner: the data, the sigmas chosen once on the clean
data and then held fixed, the clean ensemble and its certificates, and the retrains on a poisoned
training set with the same ``train_members`` call (same seeds, sigmas and noise, a new store)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from certssb.certifier import BoundOptions, certify_grid, certify_scores, radius_variants
from certssb.config import load_option
from certssb.dataset import load_dataset
from certssb.ensemble.checkpoints import CheckpointStore, fingerprint_of
from certssb.ensemble.predict import MemberVotes, EvalInputs, predict_members
from certssb.ensemble.predict_grid import GridSpec, predict_grid
from certssb.ensemble.train import train_members, train_single
from certssb.model import model_factory
from certssb.sigma_optimiser import optimise_sigmas
from certssb.sigma_optimiser.sga import SGASettings
from certssb.ensemble.training_data import TrainingData

from .config import FalsifyConfig
from .gaussian_attack import flat
from .session import checkpoint_store, discard

__all__ = ["GaussianRunner"]


class GaussianRunner:
    """Shared state: data, fixed sigmas, clean ensemble and its certificates."""

    def __init__(self, cfg: FalsifyConfig, workdir: Path):
        self.cfg = cfg
        self.workdir = workdir
        self.timings: dict[str, float] = {}
        t0 = time.perf_counter()
        # a small set: converted to float32 once (the attacks here edit whole tensors)
        self.splits = load_dataset(load_option("dataset", "digits", classes=list(cfg.classes)), cfg.seed).to_float()
        self.factory = model_factory(load_option("model", "mlp", hidden=list(cfg.hidden)),
                                     tuple(self.splits.x_train.shape[1:]), self.splits.num_classes)
        self.ens = cfg.ensemble_cfg()
        self.sigma_settings = cfg.sigma_cfg()
        sig = self._choose_sigmas()
        self.timings["sigma"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        bounds = self._certify_clean()
        self.timings["clean_ensemble"] = time.perf_counter() - t0
        self.bounds = bounds
        # the training-side sigma the certificate may assume (the floor / sigma_train when data-independent)
        self.sigma_train_min = float(sig.certificate_train_sigmas.min())
        self.radii = radius_variants(bounds.gap, self.sig_test.numpy().astype(np.float64), self.sigma_train_min)
        if self.per_input_train is not None:  # each input's own ensemble's training sigma
            self.radii["joint"] = (np.minimum(self.sig_test.numpy().astype(np.float64), self.per_input_train)
                                   * bounds.gap / 2.0)
        self.r_joint = self.radii["joint"]
        self.prediction = bounds.prediction

    def _choose_sigmas(self):
        """The sigmas, computed once from the clean data and then held fixed for every retrain;
        one set of training sigmas per ensemble (grid_ensembles: one constant per sigma_trains
        value), and per test input the ensemble that certifies it (0 unless grid_ensembles)."""
        cfg, s, splits = self.cfg, self.sigma_settings, self.splits
        if isinstance(s, SGASettings):
            surrogate = train_single(self.factory, splits.x_train, splits.y_train, cfg.sigma_0,
                                     cfg.ensemble_cfg(cfg.surrogate_epochs), cfg.seed, "surrogate", cfg.device)
            raw_train, raw_test = (optimise_sigmas(s, surrogate, x, cfg.seed, purpose, device=cfg.device,
                                                   progress=cfg.progress).float()
                                   for purpose, x in (("train", splits.x_train), ("test-clean", splits.x_test)))
            sig = s.with_design(raw_train, raw_test, raw_test)  # training sigmas floored if a floor is set
        else:  # data-independent sigmas (the option's own; the grid designs choose the test sigma below)
            sig = s.sigmas(None, None, splits, splits.x_test, cfg.device, self.workdir, {}, cfg.progress)
        self.sig_train, self.sig_test = sig.train, sig.test_clean
        self.ensemble_sigmas = s.ensembles(self.sig_train)
        self.ens_of = np.zeros(len(splits.x_test), dtype=np.int64)
        self.per_input_train = None
        return sig

    def _certify_clean(self):
        """The clean ensemble's votes and bounds (hard votes, Clopper-Pearson); for the grid
        designs each input keeps the pair chosen with the union bound over the grid."""
        cfg, s = self.cfg, self.sigma_settings
        test_index = np.arange(len(self.splits.x_test))
        if cfg.sigma not in ("grid", "grid_ensembles"):
            self.clean_votes = self.predict(self.train("clean", self.splits.x_train), self.splits.x_test, test_index)
            return certify_scores(self.clean_votes.prob_sum, self.clean_votes.votes, self.clean_votes.n_members,
                                  alpha=cfg.alpha, mode="hard")
        stores = {e: self.train("clean", self.splits.x_train, e) for e in range(len(self.ensemble_sigmas))}
        spec = GridSpec(s.candidates(), s.train_sigmas(), s.selection, s.n_selection_members(), s.per_ensemble)
        inputs = EvalInputs(self.splits.x_test, None, torch.from_numpy(test_index), cfg.seed)
        gv = predict_grid(self.factory, [stores[e] for e in sorted(stores)], inputs, spec, self.ens, cfg.members,
                          device=cfg.device, progress=cfg.progress)
        sel = certify_grid(gv, BoundOptions(cfg.alpha, mode="hard"))
        self.sig_test = torch.from_numpy(sel.sigma).float()
        if cfg.sigma == "grid_ensembles":
            self.per_input_train = np.asarray(sel.train_sigma, dtype=np.float64)
            self.ens_of = np.array([list(s.sigma_trains).index(float(t)) for t in self.per_input_train],
                                   dtype=np.int64)
        self.clean_votes = self.predict(stores, self.splits.x_test, test_index)  # at the chosen pairs
        return sel.bounds

    def _store(self, tag: str, x_train: torch.Tensor) -> CheckpointStore:
        return checkpoint_store(self.workdir, tag, {
            "tag": tag, "seed": self.cfg.seed, "members": self.cfg.members, "ens": vars(self.ens),
            "hidden": list(self.cfg.hidden),
            "x": fingerprint_of(np.round(x_train.numpy().astype(np.float64), 7).ravel().tolist())})

    def train(self, tag: str, x_train: torch.Tensor, ensemble: int = 0) -> CheckpointStore:
        """The SAME train_members call as the clean run (seed, members, sigmas, labels), new store;
        ``ensemble``: which set of training sigmas (grid_ensembles: which sigma_trains value)."""
        store = self._store(f"{tag}-e{ensemble}" if len(self.ensemble_sigmas) > 1 else tag, x_train)
        train_members(
            self.factory,
            TrainingData(x_train, self.splits.y_train, self.ensemble_sigmas[ensemble]),
            self.ens,
            self.cfg.seed,
            range(self.cfg.members),
            store,
            device=self.cfg.device,
            progress=self.cfg.progress,
        )
        return store

    def train_for(self, tag: str, x_train: torch.Tensor, eval_index: np.ndarray) -> dict[int, CheckpointStore]:
        """The ensembles that certify the inputs ``eval_index``, retrained on ``x_train``."""
        return {int(e): self.train(tag, x_train, int(e)) for e in np.unique(self.ens_of[eval_index])}

    def discard(self, stores) -> None:
        discard(stores, self.cfg.keep_checkpoints)

    def predict(self, stores, x_eval: torch.Tensor, eval_index: np.ndarray) -> MemberVotes:
        """Votes on ``x_eval`` with the CLEAN inputs' sigma_x and test-noise indices, each input by
        the ensemble that certifies it (``stores``: one store, or ensemble -> store)."""
        stores = stores if isinstance(stores, dict) else {0: stores}
        eval_index = np.asarray(eval_index, dtype=np.int64)
        ens = self.ens_of[eval_index]
        prob = votes = None
        n_members = 0
        for e in np.unique(ens):
            pos = np.nonzero(ens == e)[0]
            idx = torch.as_tensor(eval_index[pos], dtype=torch.int64)
            v = predict_members(
                self.factory,
                stores[int(e)],
                EvalInputs(x_eval[torch.from_numpy(pos)], self.sig_test[idx], idx, self.cfg.seed),
                self.ens,
                range(self.cfg.members),
                device=self.cfg.device,
                progress=self.cfg.progress,
            )
            if prob is None:
                prob = np.zeros((len(eval_index), v.prob_sum.shape[1]), dtype=v.prob_sum.dtype)
                votes = np.zeros((len(eval_index), v.votes.shape[1]), dtype=v.votes.dtype)
            prob[pos], votes[pos], n_members = v.prob_sum, v.votes, v.n_members
        return MemberVotes(prob_sum=prob, votes=votes, n_members=n_members)

    def control_identical(self, index: np.ndarray) -> bool | None:
        """The same train_members call on the UNCHANGED data in a fresh store must give exactly the
        clean votes on the inputs ``index`` (the coupling the check relies on: same seeds, sigmas,
        noise); None when there is nothing to check."""
        if not len(index):
            return None
        stores = self.train_for("control", self.splits.x_train, index)
        votes = self.predict(stores, self.splits.x_test[torch.from_numpy(index)], index)
        self.discard(stores)
        return bool(np.array_equal(votes.votes, self.clean_votes.votes[index]))

    def attack_groups(self) -> dict[int, np.ndarray]:
        """Per target class (the runner-up), the certified inputs to attack: those nearest to the
        target class first, ``cfg.attacks`` in all (split evenly over the target classes)."""
        certified = np.nonzero(self.r_joint > 0)[0]
        targets = self.bounds.runner_up
        groups = {int(t): certified[targets[certified] == t] for t in np.unique(targets[certified])}
        per = max(1, int(math.ceil(self.cfg.attacks / max(1, len(groups)))))
        x_train, y_train = self.splits.x_train, self.splits.y_train
        out = {}
        for t, idx in groups.items():
            cand = x_train[y_train == t]
            d = torch.cdist(flat(self.splits.x_test[torch.from_numpy(idx)]), flat(cand)).min(dim=1).values.numpy()
            out[t] = idx[np.argsort(d, kind="stable")[:per]]
        return out
