"""Training and evaluating groups of G members at once with ``torch.func``.

The G members' parameters are stacked into leaf tensors of shape ``[G, ...]``
(``stack_module_state``) and one ``vmap(functional_call)`` runs all members on their own
batches ``[G, b, ...]``. The loss is the sum over members of each member's mean loss, so each
member's gradient is exactly its own; a single ``torch.optim.Adam`` over the stacked tensors is
exactly per-member Adam because Adam is elementwise. The result equals training the members one
at a time (``train._fit_one``) up to float rounding.

BatchNorm: the buffers (running mean and variance, ``num_batches_tracked``) are stacked per
member like the parameters, and functorch's batch-norm batching rule updates each member's own
statistics in place (``tests/test_ensemble_train.py`` checks the result against one-at-a-time
training). That rule needs the input, the affine parameters and the running statistics in one
dtype, so under bf16 autocast a BatchNorm layer's input is cast to float32 (the statistics stay
float32, as the unbatched kernels keep them).

Memory layout: channels-last cannot be requested inside ``vmap`` (``is_contiguous`` with a
memory format is not implemented for batched tensors) and vmap's max-pool and grouped-convolution
rules return default-layout tensors, so a channels-last weight would meet a default-layout input
after the first pool (a transpose per step). The vmapped path therefore runs in the default
layout; channels-last is kept for the one-at-a-time path (``Precision.for_vmap``).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from certssb.ensemble.device import host_to_device
from certssb.ensemble.jobs import Job, init_model
from certssb.ensemble.precision import FP32, Precision
from certssb.ensemble.speed import FitSpec
from certssb.ensemble.training_data import NoisySource, TrainingData


_CAST_MODULES = (nn.Linear, nn.modules.conv._ConvNd)


def stack_models(models: list[nn.Module], precision: Precision | None = None):
    """(params, buffers, base, call): stacked leaf params, stacked buffers, a meta-device copy and
    a vmapped ``call(params, buffers, x[G, b, ...]) -> logits[G, b, C]``.

    With a bf16 ``precision`` the call must run under ``precision.autocast()``, and in addition
    the inputs, weights and biases of every Linear/Conv layer are cast to bf16 inside the vmapped
    function. The cast is needed because autocast's op lists do not reach everything vmap
    produces: vmap's convolution batching rule calls ``aten::convolution``, which CPU autocast
    does not list, so on the CPU a vmapped conv ran in float32. vmap also splits ``linear`` into
    a matmul (autocast) and a float32 bias add. With the cast, the vmapped forward does the same
    bf16 operations as the autocast forward of one model. The casts are differentiable, so
    the gradients reach the float32 parameters as float32.
    """
    precision = (precision or FP32).for_vmap()
    models = [precision.model(m) for m in models]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    base.train(models[0].training)
    dtype = precision.autocast_dtype
    cast = set()
    if dtype is not None:
        def to_dtype(_mod, args):
            return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)

        def to_float32(_mod, args):
            return tuple(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)

        for mname, m in base.named_modules():
            if isinstance(m, _CAST_MODULES):
                m.register_forward_pre_hook(to_dtype)
                cast.update(f"{mname}.{pname}" if mname else pname for pname, _ in m.named_parameters(recurse=False))
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                # vmap's batch-norm rule needs input, weight and running statistics in one dtype;
                # the statistics stay float32, so the normalisation runs in float32 (as the
                # unbatched CPU/CUDA kernels do internally for bf16 inputs)
                m.register_forward_pre_hook(to_float32)

    def one(p, b, xb):
        if cast:
            p = {k: (v.to(dtype) if k in cast else v) for k, v in p.items()}
        return functional_call(base, (p, b), (xb,))

    return params, buffers, base, vmap(one, in_dims=(0, 0, 0))


def unstack_state(model_template: nn.Module, params: dict, buffers: dict, g: int) -> dict:
    """The state dict of member ``g`` (keys in ``model_template.state_dict()`` order)."""
    out = {}
    for name in model_template.state_dict().keys():
        src = params[name] if name in params else buffers[name]
        out[name] = src[g].detach().clone(memory_format=torch.contiguous_format)
    return out


def fit_group(factory, jobs: list[Job], data: TrainingData, spec: FitSpec) -> list[dict]:
    """Train the members ``jobs`` together on ``data`` as ``spec`` says (epochs, batch size, lr,
    device, precision); returns their state dicts (on the device).

    The inner loop stays on the device: no ``.item()``/``.cpu()`` and no host copies per step;
    the only host-to-device copy is each epoch's shuffles (pinned, non-blocking on CUDA).
    """
    x, y, sigmas = data.x, data.y, data.sigmas
    epochs, batch_size, lr, device = spec.epochs, spec.batch_size, spec.lr, spec.device
    precision = (spec.precision or FP32).for_vmap()
    models = [init_model(factory, job.init_seed, device) for job in jobs]
    for m in models:
        m.train()
    params, buffers, _base, call = stack_models(models, precision)
    template = models[0]
    del models
    opt = torch.optim.Adam(list(params.values()), lr=lr)
    src = NoisySource(x, sigmas, jobs, device)
    n, g = x.shape[0], len(jobs)
    size = jobs[0].size(n)
    if any(job.size(n) != size for job in jobs):
        raise ValueError("the members of a vectorised group must train on subsets of one size")
    starts = batch_starts(size, batch_size, template)
    for epoch in range(epochs):
        perms = host_to_device(torch.stack([job.permutation(epoch, n) for job in jobs]), device)
        for start in starts:
            idx = perms[:, start:start + batch_size]
            xb = precision.batch(src.batch(idx))
            with precision.autocast():
                logits = call(params, buffers, xb)
            b = idx.shape[1]
            loss = F.cross_entropy(logits.float().reshape(g * b, -1), y[idx].reshape(-1), reduction="sum") / b
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return [unstack_state(template, params, buffers, i) for i in range(g)]


def batch_starts(n: int, batch_size: int, model: nn.Module):
    """Batch start offsets; a trailing batch of one sample is dropped for BatchNorm models."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1 and any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        starts.pop()
    return starts


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def trial_step(factory, g: int, data: TrainingData, spec: FitSpec, training: bool = True) -> None:
    """One step of a group of ``g`` members on the first ``spec.batch_size`` samples of ``data``, as
    the real run does it (training: forward, backward and Adam through ``fit_group``; else the
    vmapped no-grad forward of prediction, noise included): what ``group_size.size_from_trial``
    measures."""
    x, sigmas, device = data.x, data.sigmas, spec.device
    b = min(int(spec.batch_size), x.shape[0])
    jobs = [Job(init_seed=k, shuffle_seed=0, shuffle_keys=(k,), noise_seed=0, noise_member=k) for k in range(g)]
    if training:
        fit_group(factory, jobs, data.head(b), FitSpec(1, b, 1e-3, device, spec.precision))
        return
    precision = spec.precision
    from certssb.ensemble.noise import member_noise
    precision = (precision or FP32).for_vmap()
    models = [init_model(factory, job.init_seed, device).eval() for job in jobs]
    params, buffers, _base, call = stack_models(models, precision)
    del models
    ks = torch.arange(g, device=device).view(-1, 1)
    with torch.no_grad():
        noise = member_noise(0, ks, torch.arange(b, device=device).view(1, -1), tuple(x.shape[1:]), "test",
                             device=device)
        xb = x[:b].to(device).unsqueeze(0) + sigmas[:b].to(device).view(1, -1, *([1] * (x.dim() - 1))) * noise
        with precision.autocast():
            logits = call(params, buffers, xb)
        torch.softmax(logits.double(), dim=-1).sum(0)
