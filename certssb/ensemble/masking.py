"""Padded batches (``ensemble.pad_batches``): every training step of a group has one shape.

An epoch's last batch is padded to the batch size with copies of its first sample, and a mask
(float32 ``[B]``: 1 for a real sample, 0 for padding) goes with it. The padding changes no
model: its loss weight is 0 (the loss is ``sum(mask * loss) / sum(mask)``, the mean over the
real samples, as without padding), and BatchNorm layers take their batch statistics, and update
their running statistics, over the real samples only (:func:`masked_batch_norm`; convolutions,
pooling and linear layers treat each sample on its own). Only the batch's shape changes, which
is what CUDA graphs and ``torch.compile`` need (one graph for every step).

The mask reaches the BatchNorm layers through a :class:`BatchMask` that the group's call sets
for the duration of one forward pass (the layers are called by the model's own code, which has
no argument for it). Without a mask (``pad_batches: false``) the layers run the native kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BatchMask:
    """The mask of the batch being run (None: every sample is real)."""

    def __init__(self):
        self.mask: torch.Tensor | None = None


def masked_batch_norm(x: torch.Tensor, mask: torch.Tensor, running_mean, running_var, weight, bias,
                      momentum: float, eps: float) -> torch.Tensor:
    """Training-mode batch normalisation of ``x`` ``[B, C, *]`` with statistics over the rows
    whose ``mask`` is 1 (biased variance to normalise; the running variance gets the unbiased
    one, as ``F.batch_norm``). Rows with mask 0 are normalised with those statistics and
    influence nothing."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    dims = [0] + list(range(2, x.dim()))
    m = mask.to(x.dtype).view((-1,) + (1,) * (x.dim() - 1))
    count = mask.to(x.dtype).sum() * (x[0, 0].numel())
    mean = (x * m).sum(dims) / count
    centred = x - mean.view(shape)
    var = (centred.square() * m).sum(dims) / count
    out = centred * torch.rsqrt(var + eps).view(shape)
    if weight is not None:
        out = out * weight.view(shape) + bias.view(shape)
    if running_mean is not None:
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(mean.detach() * momentum)
            running_var.mul_(1 - momentum).add_(var.detach() * (count / (count - 1)) * momentum)
    return out


class StackableBatchNorm(nn.Module):
    """A BatchNorm layer for the vectorised groups: of one model (``g`` None: parameters ``[C]``,
    run under vmap) or of ``g`` models side by side along the channel axis (parameters and
    statistics ``[g, C]``; input ``[B, g * C, *]``: per-channel statistics are per model).

    With a :class:`BatchMask` holding a mask, training-mode statistics come from the real samples
    (:func:`masked_batch_norm`); otherwise the native kernel runs. ``to_float``: the input is cast
    to float32 first (bf16 autocast: the statistics stay float32, as in ``vectorised``)."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, g: int | None = None, holder: BatchMask | None = None,
                 to_float: bool = False):
        super().__init__()
        if bn.momentum is None:
            raise ValueError("BatchNorm with momentum=None (cumulative averages) cannot be vectorised here")
        lead = () if g is None else (int(g),)
        self.eps, self.momentum, self.holder, self.to_float = bn.eps, bn.momentum, holder, to_float
        self.num_features = bn.num_features
        if bn.affine:
            self.weight = nn.Parameter(torch.empty(lead + (bn.num_features,), device="meta"))
            self.bias = nn.Parameter(torch.empty(lead + (bn.num_features,), device="meta"))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if bn.track_running_stats:
            self.register_buffer("running_mean", torch.empty(lead + (bn.num_features,), device="meta"))
            self.register_buffer("running_var", torch.empty(lead + (bn.num_features,), device="meta"))
            self.register_buffer("num_batches_tracked", torch.empty(lead, dtype=torch.long, device="meta"))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.to_float:
            x = x.float()
        flat = [None if t is None else t.reshape(-1) for t in (self.running_mean, self.running_var, self.weight,
                                                                 self.bias)]
        if self.training and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
        mask = self.holder.mask if self.holder is not None else None
        if self.training and mask is not None:
            return masked_batch_norm(x, mask, *flat, self.momentum, self.eps)
        use_batch = self.training or self.running_mean is None
        return F.batch_norm(x, flat[0], flat[1], flat[2], flat[3], use_batch, self.momentum, self.eps)


def swap_batchnorms(module: nn.Module, make) -> None:
    """Replace every BatchNorm layer ``bn`` under ``module`` (in place) by ``make(bn)``."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, make(child))
        else:
            swap_batchnorms(child, make)


def padded_order(order: torch.Tensor, starts: list[int], batch: int):
    """Per step ``(idx [G, batch], mask [batch] | None)`` from an epoch's order ``[G, size]``:
    each batch of ``order`` at ``starts`` (the last one padded with copies of its first column).
    ``batch`` is the step's fixed size (at most ``size``); masks are cached per length."""
    masks: dict[int, torch.Tensor] = {}
    for start in starts:
        idx = order[:, start:start + batch]
        r = idx.shape[1]
        if r not in masks:
            masks[r] = torch.cat([torch.ones(r, device=order.device), torch.zeros(batch - r, device=order.device)])
        if r < batch:
            idx = torch.cat([idx, idx[:, :1].expand(-1, batch - r)], dim=1)
        yield idx, masks[r]
