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
from certssb.ensemble.training_data import check_tensors
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


def predict_models(factory, store, x, ens: EnsembleSettings, members, device=None, progress: bool = True) -> ModelVotes:
    """Every model's prediction on ``x`` without noise, with its class ranking (:class:`ModelVotes`)."""
    n = len(x)
    return predict_members(factory, store, x, torch.zeros(n), torch.arange(n), ens, 0, members, device=device,
                           progress=progress, ranks=True)


def predict_members(factory, store, x, sigmas_x, indices, ens: EnsembleSettings, seed: int, members, device=None,
                    progress: bool = True, ranks: bool = False) -> MemberVotes:
    """Noisy predictions of ``members`` on images ``x`` (global sample ``indices`` key the noise).

    ``x`` is uint8 images or any :class:`~certssb.dataset.batched.BatchedImages` (or a float
    tensor); each batch is converted to float32 before its noise is added.

    The forward passes run in ``cfg.precision`` (see ``resolve_precision``); the softmax is taken
    of the logits in float64 and summed in float64, whatever the forward precision, so the
    certificate arithmetic downstream is unchanged. Inputs go to the device once; per batch there
    are no host copies, and the sums come back once at the end. Where every sigma is 0 no noise is
    drawn. ``ranks``: also every member's class ranking (a :class:`ModelVotes`).
    """
    device = resolve_device(device if device is not None else ens.device)
    members = [int(k) for k in members]
    if not members:
        raise ConfigError("predict_members needs at least one member")
    x = check_tensors(x, None, sigmas_x)
    noisy = bool((sigmas_x != 0).any())
    indices = torch.as_tensor(indices)
    if indices.shape != (len(x),) or indices.is_floating_point():
        raise ConfigError(f"indices must be integers [n] matching x, got shape {tuple(indices.shape)}")
    missing = store.missing(members)
    if missing:
        raise CertSSBError(f"{len(missing)} of {len(members)} member checkpoints missing in {store.directory} "
                           f"(first: {missing[:5]}); run training first")
    eval_bs = int(ens.eval_batch_size)
    x = x.to(device)  # once per call, as held (uint8 stays uint8); x[sl] is a float32 batch
    sig = sigmas_x.to(device, torch.float32).view(-1, *([1] * (x.dim() - 1)))
    idx = indices.to(device, torch.int64)
    shape = tuple(x.shape[1:])
    n = len(x)
    probe = factory().to(device)
    vectorise = choose_vectorise(ens, probe, shape, device)
    precision = resolve_precision(ens.precision, probe, device)
    with deterministic_kernels(bool(ens.deterministic)):
        g = (group_size(ens, factory, x, None, sigmas_x, eval_bs, device, len(members), precision, training=False)
             if vectorise else 1)
    with torch.no_grad():
        num_classes = probe.eval()(x[:1]).shape[-1]
    del probe
    prob_sum = torch.zeros((n, num_classes), dtype=torch.float64, device=device)
    votes = torch.zeros((n, num_classes), dtype=torch.int64, device=device)
    rank_all = (torch.empty((n, len(members), num_classes), dtype=torch.int8 if num_classes <= 127 else torch.int16,
                            device=device) if ranks else None)
    bar = progress_bar(total=len(members), desc="predict members", unit="member", enabled=progress)
    try:
        with torch.no_grad(), deterministic_kernels(bool(ens.deterministic)):
            for s in range(0, len(members), g):
                group = members[s:s + g]
                models = [load_member(factory, store, k, device, precision) for k in group]
                if vectorise:
                    params, buffers, _, call = stack_models(models, precision)
                    ks = torch.tensor(group, dtype=torch.int64, device=device).view(-1, 1)
                else:
                    model = models[0]
                for b0 in range(0, n, eval_bs):
                    sl = slice(b0, b0 + eval_bs)
                    if vectorise:
                        xb = x[sl].unsqueeze(0)
                        if noisy:
                            xb = xb + sig[sl].unsqueeze(0) * member_noise(seed, ks, idx[sl].view(1, -1), shape, "test",
                                                                          device=device)
                        else:
                            xb = xb.expand(len(group), *xb.shape[1:])
                        with precision.autocast():
                            logits = call(params, buffers, precision.batch(xb))
                    else:
                        xb = x[sl]
                        if noisy:
                            xb = xb + sig[sl] * member_noise(seed, group[0], idx[sl], shape, "test", device=device)
                        with precision.autocast():
                            logits = model(precision.batch(xb)).unsqueeze(0)
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
