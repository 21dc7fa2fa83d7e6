"""A group of G models as ONE model whose layers hold all G side by side along the channel axis
(``ensemble.vectorise: grouped``), the alternative to ``vmap`` for convolutional models.

Activations are ``[B, G * C, H, W]`` (model ``g``'s channels at ``g * C .. (g + 1) * C``) from the
input to the last layer, so no layer needs a transpose:

* a convolution of ``groups = k`` becomes one convolution of ``groups = G * k`` whose weight is
  the G weights concatenated along the output channels (the stacked ``[G, Cout, ...]`` tensor
  viewed as ``[G * Cout, ...]``: no copy);
* a BatchNorm layer over ``C`` channels becomes one over ``G * C`` channels: its per-channel
  statistics are per model (:class:`~certssb.ensemble.masking.StackableBatchNorm`);
* a linear layer becomes one batched matrix product over the G models (``baddbmm``): its input
  ``[..., G * F]`` (a flattened ``[B, G * C, h, w]`` is model-major) is viewed as ``[G, N, F]``;
* ReLU, pooling, flattening from dimension 1 and residual additions act per channel or per
  element and are unchanged.

vmap's batching rules do the same for a convolution (they fold the model dimension into the
channels) but move it back to the front after every layer (a copy per layer and direction); here
the layout stays. The parameters are the same stacked ``[G, ...]`` leaf tensors as for vmap
(``stack_module_state``), so Adam, checkpoints (``vectorised.unstack_state``) and the training
loop are shared. Which models qualify: :func:`unsupported_modules` (module types, at parse time)
and :func:`verify_grouped` (the grouped forward equals each model's own, float64, once per model).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state

from certssb.ensemble.masking import BatchMask, StackableBatchNorm, swap_batchnorms
from certssb.ensemble.precision import FP32, Precision
from certssb.errors import ConfigError

#: leaf modules that act per channel or per element (unchanged in a grouped model)
ELEMENTWISE = (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Identity, nn.Flatten)


def _cast(dtype, *tensors):
    return tuple(t if t is None or dtype is None else t.to(dtype) for t in tensors)


class GroupedConv2d(nn.Module):
    """``g`` copies of ``conv`` in one convolution (weight ``[g, Cout, Cin / k, kh, kw]``)."""

    def __init__(self, conv: nn.Conv2d, g: int, cast: torch.dtype | None = None):
        super().__init__()
        self.g, self.cast = int(g), cast
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.groups = conv.groups * self.g
        self.weight = nn.Parameter(torch.empty((self.g,) + tuple(conv.weight.shape), device="meta"))
        if conv.bias is not None:
            self.bias = nn.Parameter(torch.empty((self.g,) + tuple(conv.bias.shape), device="meta"))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.flatten(0, 1)
        b = None if self.bias is None else self.bias.flatten()
        x, w, b = _cast(self.cast, x, w, b)
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation, self.groups)


class GroupedLinear(nn.Module):
    """``g`` copies of ``linear`` as one batched product: ``[..., g * I] -> [..., g * O]``."""

    def __init__(self, linear: nn.Linear, g: int, cast: torch.dtype | None = None):
        super().__init__()
        self.g, self.cast = int(g), cast
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = nn.Parameter(torch.empty((self.g, self.out_features, self.in_features), device="meta"))
        if linear.bias is not None:
            self.bias = nn.Parameter(torch.empty((self.g, self.out_features), device="meta"))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        xg = x.reshape(-1, self.g, self.in_features).transpose(0, 1)  # [g, N, I]
        xg, w, b = _cast(self.cast, xg, self.weight, self.bias)
        w = w.transpose(1, 2)
        out = torch.bmm(xg, w) if b is None else torch.baddbmm(b.unsqueeze(1), xg, w)
        return out.transpose(0, 1).reshape(lead + (self.g * self.out_features,))


def unsupported_modules(model: nn.Module) -> str:
    """Why ``model`` cannot be grouped ("" when it can): its leaf modules must be convolutions
    (2-d, zero padding), linear, BatchNorm (with momentum) or per-channel layers (ReLU, pooling,
    flatten from dimension 1, identity); containers may hold no parameters of their own."""
    bad = []
    for name, m in model.named_modules():
        label = f"{name or 'model'} ({type(m).__name__})"
        if any(True for _ in m.children()):
            if any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(recurse=False)):
                bad.append(f"{label} holds parameters of its own")
        elif isinstance(m, nn.Conv2d):
            if m.padding_mode != "zeros":
                bad.append(f"{label} pads with {m.padding_mode}")
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.momentum is None:
                bad.append(f"{label} has momentum=None")
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                bad.append(f"{label} flattens dims {m.start_dim}..{m.end_dim}")
        elif not isinstance(m, (nn.Linear,) + ELEMENTWISE):
            bad.append(f"{label} is not a supported layer")
    return ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")


def grouped_copy(model: nn.Module, g: int, holder: BatchMask | None = None, cast: torch.dtype | None = None):
    """A meta-device copy of ``model`` whose layers hold ``g`` models (see the module docstring)."""
    why = unsupported_modules(model)
    if why:
        raise ConfigError(f"ensemble.vectorise=grouped cannot stack this model along the channel axis ({why}); "
                          "use vectorise=vmap")
    base = copy.deepcopy(model).to("meta")
    base.train(model.training)

    def replace(module: nn.Module) -> None:
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Conv2d):
                setattr(module, name, GroupedConv2d(child, g, cast))
            elif isinstance(child, nn.Linear):
                setattr(module, name, GroupedLinear(child, g, cast))
            else:
                replace(child)

    replace(base)
    swap_batchnorms(base, lambda bn: StackableBatchNorm(bn, g, holder, to_float=cast is not None))
    base.train(model.training)
    return base


def group_models(models: list[nn.Module], precision: Precision | None = None, holder: BatchMask | None = None):
    """(params, buffers, base, call) as ``vectorised.stack_models`` returns them, for the grouped
    model: ``call(params, buffers, x[G, b, ...]) -> logits[G, b, C]``.

    With bf16 ``precision`` the call runs under ``precision.autocast()`` and every convolution and
    linear layer casts its input, weight and bias to bf16 (as the vmapped path does), BatchNorm
    runs in float32. ``precision.channels_last``: the grouped input is made channels-last (the
    layout then carries through the convolutions)."""
    precision = precision or FP32
    g = len(models)
    params, buffers = stack_module_state(models)
    base = grouped_copy(models[0], g, holder, precision.autocast_dtype)
    channels_last = precision.channels_last

    def call(p, b, x):
        G, B = x.shape[:2]
        xi = x.transpose(0, 1).reshape((B, G * x.shape[2]) + tuple(x.shape[3:]))
        if channels_last and xi.dim() == 4:
            xi = xi.contiguous(memory_format=torch.channels_last)
        out = functional_call(base, (p, b), (xi,))
        return out.reshape(B, G, -1).transpose(0, 1)

    return params, buffers, base, call


def _signature(model: nn.Module, input_shape) -> tuple:
    return type(model).__qualname__, repr(model), tuple(input_shape)


_VERIFIED: set[tuple] = set()


def verify_grouped(factory, input_shape, tol: float = 1e-9) -> None:
    """Check once per model architecture that its grouped forward computes each model's own
    (2 models, float64, training mode, 3 random inputs each, on the CPU): a model whose forward
    mixes channels across what would be different models (a channel concatenation, a view with
    a fixed channel count) fails here with one line instead of training wrong models."""
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        probe = factory()
        key = _signature(probe, input_shape)
        if key in _VERIFIED:
            return
        torch.manual_seed(0)
        models = [factory().double().train() for _ in range(2)]
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((2, 3) + tuple(input_shape), generator=gen, dtype=torch.float64)
    params, buffers, _, call = group_models([copy.deepcopy(m) for m in models])
    with torch.no_grad():
        grouped = call(params, buffers, x)
        own = torch.stack([m(x[i]) for i, m in enumerate(models)])
    if grouped.shape != own.shape or not torch.allclose(grouped, own, atol=tol, rtol=tol):
        raise ConfigError(f"ensemble.vectorise=grouped: {type(probe).__name__}'s forward pass mixes what would be "
                          "different models' channels (its grouped output differs from each model's own); use "
                          "vectorise=vmap")
    _VERIFIED.add(key)
