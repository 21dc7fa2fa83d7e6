"""Ensemble prediction: member k predicts on ``x + sigma_x * member_noise(seed, k, index, "test")``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from certssb.progress import progress_bar

from certssb.dataset.batched import as_images
from certssb.ensemble._source import (FP32, Precision, cfg_get, cfg_int, check_tensors, precision_mode,
                                      resolve_precision)
from certssb.ensemble.determinism import deterministic_kernels, is_deterministic
from certssb.ensemble.device import resolve_device
from certssb.ensemble.noise import member_noise
from certssb.ensemble.train import _group_size, choose_vectorise
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


def _load(factory, store, k: int, device, precision: Precision = FP32) -> nn.Module:
    model = factory()
    model.load_state_dict(store.load(k))
    return precision.model(model.to(device)).eval()


def predict_members(factory, store, x, sigmas_x, indices, cfg, seed: int, members, device=None,
                    progress: bool = True) -> MemberVotes:
    """Noisy predictions of ``members`` on images ``x`` (global sample ``indices`` key the noise).

    ``x`` is uint8 images or any :class:`~certssb.dataset.batched.BatchedImages` (or a float
    tensor); each batch is converted to float32 before its noise is added.

    The forward passes run in ``cfg.precision`` (see ``resolve_precision``); the softmax is taken
    of the logits in float64 and summed in float64, whatever the forward precision, so the
    certificate arithmetic downstream is unchanged. Inputs go to the device once; per batch there
    are no host copies, and the sums come back once at the end.
    """
    device = resolve_device(device if device is not None else cfg_get(cfg, "device", "auto"))
    members = [int(k) for k in members]
    if not members:
        raise ConfigError("predict_members needs at least one member")
    precision_mode(cfg)  # validate before anything else
    x = check_tensors(x, None, sigmas_x)
    indices = torch.as_tensor(indices)
    if indices.shape != (len(x),) or indices.is_floating_point():
        raise ConfigError(f"indices must be integers [n] matching x, got shape {tuple(indices.shape)}")
    missing = store.missing(members)
    if missing:
        raise CertSSBError(f"{len(missing)} of {len(members)} member checkpoints missing in {store.directory} "
                           f"(first: {missing[:5]}); run training first")
    eval_bs = cfg_int(cfg, "eval_batch_size", 256)
    x = x.to(device)  # once per call, as held (uint8 stays uint8); x[sl] is a float32 batch
    sig = sigmas_x.to(device, torch.float32).view(-1, *([1] * (x.dim() - 1)))
    idx = indices.to(device, torch.int64)
    shape = tuple(x.shape[1:])
    n = len(x)
    probe = factory().to(device)
    vectorise = choose_vectorise(cfg, probe, shape, device)
    precision = resolve_precision(cfg, probe, device)
    with deterministic_kernels(is_deterministic(cfg)):
        g = (_group_size(cfg, factory, x, None, sigmas_x, eval_bs, device, len(members), precision, training=False)
             if vectorise else 1)
    with torch.no_grad():
        num_classes = probe.eval()(x[:1]).shape[-1]
    del probe
    prob_sum = torch.zeros((n, num_classes), dtype=torch.float64, device=device)
    votes = torch.zeros((n, num_classes), dtype=torch.int64, device=device)
    bar = progress_bar(total=len(members), desc="predict members", unit="member", enabled=progress)
    try:
        with torch.no_grad(), deterministic_kernels(is_deterministic(cfg)):
            for s in range(0, len(members), g):
                group = members[s:s + g]
                models = [_load(factory, store, k, device, precision) for k in group]
                if vectorise:
                    params, buffers, _, call = stack_models(models, precision)
                    ks = torch.tensor(group, dtype=torch.int64, device=device).view(-1, 1)
                else:
                    model = models[0]
                for b0 in range(0, n, eval_bs):
                    sl = slice(b0, b0 + eval_bs)
                    if vectorise:
                        noise = member_noise(seed, ks, idx[sl].view(1, -1), shape, "test", device=device)
                        xb = precision.batch(x[sl].unsqueeze(0) + sig[sl].unsqueeze(0) * noise)
                        with precision.autocast():
                            logits = call(params, buffers, xb)
                    else:
                        noise = member_noise(seed, group[0], idx[sl], shape, "test", device=device)
                        xb = precision.batch(x[sl] + sig[sl] * noise)
                        with precision.autocast():
                            logits = model(xb).unsqueeze(0)
                    # float64 softmax and sums whatever the forward precision (bf16 logits are
                    # exactly representable); argmax of the same logits
                    prob_sum[sl] += torch.softmax(logits.double(), dim=-1).sum(0)
                    pred = logits.argmax(-1).t()  # [b, G]
                    # scatter_add_ rather than one_hot: no host-side range check (a sync on CUDA)
                    votes[sl].scatter_add_(1, pred, torch.ones_like(pred))
                bar.update(len(group))
    finally:
        bar.close()
    return MemberVotes(prob_sum=prob_sum.cpu().numpy(), votes=votes.cpu().numpy(), n_members=len(members))


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
