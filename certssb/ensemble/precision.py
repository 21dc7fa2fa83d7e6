"""How forward passes run: float32, or bf16 autocast (and channels-last for convolutional models on
CUDA). Parameters, gradients and optimiser state always stay float32."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from certssb.errors import ConfigError


def is_convolutional(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())


@dataclass(frozen=True)
class Precision:
    """How forward passes run: ``autocast_dtype`` (None: plain float32) and the memory format.

    Parameters, gradients and optimiser state always stay float32; only the forward pass is
    autocast (losses and softmaxes are computed from float32/float64 logits).
    """

    device_type: str = "cpu"
    autocast_dtype: torch.dtype | None = None
    channels_last: bool = False

    @property
    def name(self) -> str:
        """``fp32`` | ``bf16``, with ``+channels_last`` when used (the resolved mode, for logs,
        checkpoint metadata and the member fingerprint)."""
        base = "fp32" if self.autocast_dtype is None else str(self.autocast_dtype).replace("torch.", "").replace(
            "bfloat16", "bf16")
        return base + ("+channels_last" if self.channels_last else "")

    def for_vmap(self) -> "Precision":
        """This precision in the default memory format (what the vmapped path runs; see
        ``vectorised``)."""
        return Precision(self.device_type, self.autocast_dtype, False)

    def autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.autocast_dtype)

    def model(self, model: nn.Module) -> nn.Module:
        """The model in this precision's memory format (in place)."""
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def batch(self, xb: torch.Tensor) -> torch.Tensor:
        """An input batch ``[b, C, H, W]`` in this memory format (vmapped groups ``[G, b, ...]``
        run in the default layout, see ``for_vmap``)."""
        if not self.channels_last or xb.dim() != 4:
            return xb
        return xb.contiguous(memory_format=torch.channels_last)


FP32 = Precision()


def resolve_precision(mode: str, model: nn.Module, device) -> Precision:
    """``ensemble.precision`` ``mode``: ``auto``: bf16 autocast and channels-last on CUDA for
    convolutional models (bf16 only where the GPU supports it), float32 otherwise (always on CPU);
    ``fp32``: float32; ``bf16``: bf16 autocast on any device (CPU included), default memory format."""
    device = torch.device(device)
    if mode == "fp32":
        return Precision(device.type)
    if mode == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError(f"ensemble.precision=bf16 but {torch.cuda.get_device_name(device)} lacks bfloat16; "
                              f"use ensemble.precision=auto or fp32")
        return Precision(device.type, torch.bfloat16)
    if device.type == "cuda" and is_convolutional(model):
        return Precision(device.type, torch.bfloat16 if torch.cuda.is_bf16_supported() else None, True)
    return Precision(device.type)
