"""Ensemble prediction: member k predicts on ``x + sigma_x * member_noise(seed, k, index, "test")``
(on ``x`` itself where every sigma is 0: the count-certified family)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from certssb.progress import progress_bar

from certssb.dataset.batched import as_images
from certssb.ensemble.determinism import deterministic_kernels
from certssb.ensemble.device import resolve_device
from certssb.ensemble.noise import member_noise
from certssb.ensemble.precision import FP32, Precision, resolve_precision
from certssb.ensemble.settings import EnsembleSettings
from certssb.ensemble.train import choose_vectorise, group_size
from certssb.ensemble.speed import FitSpec
from certssb.ensemble.training_data import TrainingData, check_tensors
from certssb.ensemble.vectorised import stack_models
from certssb.errors import CertSSBError, ConfigError


@dataclass
class MemberVotes:
    """Per-input class scores over ``n_members`` members."""

    prob_sum: np.ndarray  # float64 [n, C]: sum of the members' softmax vectors
    votes: np.ndarray  # int64 [n, C]: number of members whose argmax is the class
    n_members: int

    def subset(self, positions: np.ndarray) -> "MemberVotes":
        """The votes of the inputs at ``positions``."""
        return MemberVotes(prob_sum=self.prob_sum[positions], votes=self.votes[positions], n_members=self.n_members)


@dataclass
class ModelVotes(MemberVotes):
    """:class:`MemberVotes` plus every model's class ranking: ``ranks[i, j, c]`` is the position of
    class ``c`` in model ``j``'s order of the classes on input ``i`` (0: its vote), ties to the
    smaller class index (int8, int16 beyond 127 classes). What the count certificates read."""

    ranks: np.ndarray | None = None

    def subset(self, positions: np.ndarray) -> "ModelVotes":
        return ModelVotes(prob_sum=self.prob_sum[positions], votes=self.votes[positions], n_members=self.n_members,
                          ranks=self.ranks[positions])


def load_member(factory, store, k: int, device, precision: Precision = FP32) -> nn.Module:
    """Member ``k`` of ``store`` on ``device`` in eval mode (and ``precision``'s memory format)."""
    model = factory()
    model.load_state_dict(store.load(k))
    return precision.model(model.to(device)).eval()


def _class_ranks(logits: torch.Tensor) -> torch.Tensor:
    """``[G, b, C]`` logits -> ``[G, b, C]`` rank of each class (0 = the top; ties to the smaller
    index, as ``argmax``: a stable descending sort keeps equal logits in class order)."""
    order = torch.argsort(logits, dim=-1, descending=True, stable=True)
    positions = torch.arange(logits.shape[-1], device=logits.device).expand_as(order)
    return torch.empty_like(order).scatter_(-1, order, positions)


@dataclass(frozen=True)
class EvalInputs:
    """What members predict on: images ``x`` (uint8 images, any ``BatchedImages`` or a float
    tensor), their test sigmas [n] (None: no noise) and the global sample ``indices`` [n] that, with
    ``seed``, key each member's test noise ``member_noise(seed, k, index, "test")``."""

    x: object
    sigmas: torch.Tensor | None
    indices: torch.Tensor
    seed: int = 0

    @classmethod
    def clean(cls, x) -> "EvalInputs":
        """``x`` without noise (the count-certified family)."""
        return cls(x, None, torch.arange(len(x)))


def predict_models(factory, store, x, ens: EnsembleSettings, members, device=None, progress: bool = True) -> ModelVotes:
    """Every model's prediction on ``x`` without noise, with its class ranking (:class:`ModelVotes`)."""
    return predict_members(factory, store, EvalInputs.clean(x), ens, members, device=device, progress=progress,
                           ranks=True)


@dataclass
class _Prepared:
    """A prediction call's inputs on the device and how the members run."""

    x: object
    sig: torch.Tensor | None  # [n, 1, ...] test sigmas; None: no noise
    idx: torch.Tensor
    seed: int
    vectorise: bool
    precision: Precision
    group: int
    num_classes: int


def _prepare(factory, store, inputs: EvalInputs, ens: EnsembleSettings, members: list[int], device) -> _Prepared:
    if not members:
        raise ConfigError("predict_members needs at least one member")
    sigmas = inputs.sigmas if inputs.sigmas is not None else torch.zeros(len(inputs.x))
    x = check_tensors(inputs.x, None, sigmas)
    indices = torch.as_tensor(inputs.indices)
    if indices.shape != (len(x),) or indices.is_floating_point():
        raise ConfigError(f"indices must be integers [n] matching x, got shape {tuple(indices.shape)}")
    missing = store.missing(members)
    if missing:
        raise CertSSBError(f"{len(missing)} of {len(members)} member checkpoints missing in {store.directory} "
                           f"(first: {missing[:5]}); run training first")
    x = x.to(device)  # once per call, as held (uint8 stays uint8); x[sl] is a float32 batch
    noisy = bool((sigmas != 0).any())
    sig = sigmas.to(device, torch.float32).view(-1, *([1] * (x.dim() - 1))) if noisy else None
    probe = factory().to(device)
    vectorise = choose_vectorise(ens, probe, tuple(x.shape[1:]), device)
    precision = resolve_precision(ens.precision, probe, device)
    spec = FitSpec(1, int(ens.eval_batch_size), 1e-3, device, precision)
    with deterministic_kernels(bool(ens.deterministic)):
        g = (
            group_size(ens, factory, TrainingData(x, None, sigmas), spec, len(members), training=False)
            if vectorise
            else 1
        )
    with torch.no_grad():
        num_classes = probe.eval()(x[:1]).shape[-1]
    return _Prepared(x, sig, indices.to(device, torch.int64), int(inputs.seed), vectorise, precision, g, num_classes)


def _logits(p: _Prepared, run, group: list[int], sl: slice) -> torch.Tensor:
    """``[G, b, C]`` logits of the members ``group`` (``run``: their vmapped call, or one model) on
    the batch ``sl``, each member with its own test noise."""
    xb, shape = p.x[sl], tuple(p.x.shape[1:])
    if p.vectorise:
        params, buffers, call, ks = run
        xb = xb.unsqueeze(0)
        if p.sig is not None:
            xb = xb + p.sig[sl].unsqueeze(0) * member_noise(p.seed, ks, p.idx[sl].view(1, -1), shape, "test",
                                                            device=xb.device)
        else:
            xb = xb.expand(len(group), *xb.shape[1:])
        with p.precision.autocast():
            return call(params, buffers, p.precision.batch(xb))
    if p.sig is not None:
        xb = xb + p.sig[sl] * member_noise(p.seed, group[0], p.idx[sl], shape, "test", device=xb.device)
    with p.precision.autocast():
        return run(p.precision.batch(xb)).unsqueeze(0)


def predict_members(factory, store, inputs: EvalInputs, ens: EnsembleSettings, members, device=None,
                    progress: bool = True, ranks: bool = False) -> MemberVotes:
    """Noisy predictions of ``members`` on ``inputs``: member k predicts on
    ``x + sigma_x * member_noise(seed, k, index, "test")`` (on ``x`` itself without sigmas).

    Each batch is converted to float32 before its noise is added. The forward passes run in
    ``ensemble.precision`` (see ``resolve_precision``); the softmax is taken of the logits in float64
    and summed in float64, whatever the forward precision, so the certificate arithmetic
    downstream is unchanged. Inputs go to the device once; per batch there are no host copies, and
    the sums come back once at the end. ``ranks``: also every member's class ranking (a
    :class:`ModelVotes`).
    """
    device = resolve_device(device if device is not None else ens.device)
    members = [int(k) for k in members]
    p = _prepare(factory, store, inputs, ens, members, device)
    n, eval_bs = len(p.x), int(ens.eval_batch_size)
    prob_sum = torch.zeros((n, p.num_classes), dtype=torch.float64, device=device)
    votes = torch.zeros((n, p.num_classes), dtype=torch.int64, device=device)
    rank_all = (torch.empty((n, len(members), p.num_classes), device=device,
                            dtype=torch.int8 if p.num_classes <= 127 else torch.int16) if ranks else None)
    bar = progress_bar(total=len(members), desc="predict members", unit="member", enabled=progress)
    try:
        with torch.no_grad(), deterministic_kernels(bool(ens.deterministic)):
            for s in range(0, len(members), p.group):
                group = members[s:s + p.group]
                models = [load_member(factory, store, k, device, p.precision) for k in group]
                if p.vectorise:
                    params, buffers, _, call = stack_models(models, p.precision)
                    run = (params, buffers, call, torch.tensor(group, dtype=torch.int64, device=device).view(-1, 1))
                else:
                    run = models[0]
                for b0 in range(0, n, eval_bs):
                    sl = slice(b0, b0 + eval_bs)
                    logits = _logits(p, run, group, sl)
                    # float64 softmax and sums whatever the forward precision (bf16 logits are
                    # exactly representable); argmax of the same logits
                    prob_sum[sl] += torch.softmax(logits.double(), dim=-1).sum(0)
                    pred = logits.argmax(-1).t()  # [b, G]
                    # scatter_add_ rather than one_hot: no host-side range check (a sync on CUDA)
                    votes[sl].scatter_add_(1, pred, torch.ones_like(pred))
                    if rank_all is not None:
                        rank_all[sl, s:s + len(group)] = _class_ranks(logits).transpose(0, 1).to(rank_all.dtype)
                bar.update(len(group))
    finally:
        bar.close()
    out = dict(prob_sum=prob_sum.cpu().numpy(), votes=votes.cpu().numpy(), n_members=len(members))
    return ModelVotes(**out, ranks=rank_all.cpu().numpy()) if rank_all is not None else MemberVotes(**out)


def predict_single(model: nn.Module, x, batch_size: int = 256, device=None) -> np.ndarray:
    """Argmax predictions of one model on images ``x`` (no noise), as int64 numpy [n].

    ``x`` goes to the device once, as held, and is converted per batch; the predictions come
    back once (no copies per batch)."""
    device = resolve_device(device)
    model = model.to(device).eval()
    x = as_images(x).to(device)
    out = []
    with torch.no_grad():
        for xb in x.batches(int(batch_size)):
            out.append(model(xb).argmax(-1))
    return (torch.cat(out).cpu() if out else torch.zeros(0, dtype=torch.int64)).numpy().astype(np.int64)
