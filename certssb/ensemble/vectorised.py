"""Training and evaluating groups of G members at once with ``torch.func``.

The G members' parameters are stacked into leaf tensors of shape ``[G, ...]``
(``stack_module_state``) and one ``vmap(functional_call)`` runs all members on their own
batches ``[G, b, ...]``. The loss is the sum over members of each member's mean loss, so each
member's gradient is exactly its own; a single ``torch.optim.Adam`` over the stacked tensors is
exactly per-member Adam because Adam is elementwise. The result equals training the members one
at a time (``train._fit_one``) up to float rounding.

BatchNorm: under ``vectorise=auto`` models with BatchNorm are trained one at a time. In training
mode BatchNorm updates its running statistics in place; under ``vmap`` this is only correct when
the buffers are stacked per member and relies on functorch's batch-norm batching rule (and
``num_batches_tracked`` bookkeeping), and the grouped convolutions that vmap produces are slower
than cuDNN/oneDNN's plain ones for such wide nets anyway. ``vectorise=true`` forces the vmap path
(buffers are stacked, so statistics stay per member).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from certssb.ensemble._source import FP32, Job, NoisySource, Precision, host_to_device, init_model


def activation_elems(model: nn.Module, input_shape) -> int:
    """Elements of all leaf-module outputs for one sample (a proxy for activation memory)."""
    total = 0
    hooks = []

    def hook(_m, _i, out):
        nonlocal total
        if isinstance(out, torch.Tensor):
            total += out[0].numel()

    for m in model.modules():
        if len(list(m.children())) == 0:
            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        p = next(model.parameters(), None)
        dev = p.device if p is not None else torch.device("cpu")
        with torch.no_grad():
            model(torch.zeros((1,) + tuple(input_shape), device=dev))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total


def auto_group_size(model: nn.Module, input_shape, batch_size: int, device: torch.device,
                    n_members: int, training: bool = True) -> int:
    """Members per vmap group from the parameter count, activation size and device memory.

    Per member: parameters, gradients and two Adam moments (4 x params) plus forward and backward
    activations (about 3 x activations x batch), float32. CUDA: half the free memory, at most 256.
    CPU: at most 64 (bigger groups stop paying off on a few cores; measured 3.4x over one at a
    time with 64 against 3.2x with 32 for the digits MLP on 2 cores) and 1 GiB.
    """
    n_params = sum(p.numel() for p in model.parameters())
    act = activation_elems(model, input_shape)
    per_member = 4 * ((4 if training else 1) * n_params + 3 * batch_size * act)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget, cap = 0.5 * free, 256
    else:
        budget, cap = float(1 << 30), 64
    g = int(budget // max(per_member, 1))
    return max(1, min(cap, g, n_members))


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
    precision = precision or FP32
    models = [precision.model(m) for m in models]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    base.train(models[0].training)
    dtype = precision.autocast_dtype
    cast = set()
    if dtype is not None:
        def to_dtype(_mod, args):
            return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)

        for mname, m in base.named_modules():
            if isinstance(m, _CAST_MODULES):
                m.register_forward_pre_hook(to_dtype)
                cast.update(f"{mname}.{pname}" if mname else pname for pname, _ in m.named_parameters(recurse=False))

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


def fit_group(factory, jobs: list[Job], x: torch.Tensor, y: torch.Tensor, sigmas: torch.Tensor,
              epochs: int, batch_size: int, lr: float, device: torch.device,
              precision: Precision | None = None) -> list[dict]:
    """Train the members ``jobs`` together; returns their state dicts (on the device).

    The inner loop stays on the device: no ``.item()``/``.cpu()`` and no host copies per step;
    the only host-to-device copy is each epoch's shuffles (pinned, non-blocking on CUDA).
    """
    precision = precision or FP32
    models = [init_model(factory, job.init_seed, device) for job in jobs]
    for m in models:
        m.train()
    params, buffers, _base, call = stack_models(models, precision)
    template = models[0]
    del models
    opt = torch.optim.Adam(list(params.values()), lr=lr)
    src = NoisySource(x, sigmas, jobs, device)
    n, g = x.shape[0], len(jobs)
    starts = _batch_starts(n, batch_size, template)
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


def _batch_starts(n: int, batch_size: int, model: nn.Module):
    """Batch start offsets; a trailing batch of one sample is dropped for BatchNorm models."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1 and any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        starts.pop()
    return starts


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)
