"""Device selection and the record of what ran where."""

from __future__ import annotations

import os
import sys

import torch

from certssb.errors import ConfigError

_warned = False


def _handed_a_gpu(environ=None) -> str | None:
    """The ``CUDA_VISIBLE_DEVICES`` value when it names a device (a launcher handed one), else None."""
    env = os.environ if environ is None else environ
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    first = value.split(",")[0].strip()
    return value if first and not first.startswith("-") else None


def _cuda_usable() -> tuple[bool, str]:
    """(usable, why not): CUDA present and a tiny allocation works."""
    if not torch.cuda.is_available():
        return False, "CUDA is not available (no GPU, driver or CUDA build)"
    try:
        torch.zeros(1, device="cuda")
    except Exception as exc:  # driver/runtime mismatch, busy or lost device
        return False, f"CUDA cannot be used: {str(exc).splitlines()[0]}"
    return True, ""


def resolve_device(name=None) -> torch.device:
    """``'auto'`` (or None) -> ``cuda`` when usable, else ``cpu``; otherwise the named device.

    A named CUDA device that cannot be used is a ``ConfigError`` (one line). ``auto`` falling back
    to the CPU while ``CUDA_VISIBLE_DEVICES`` names a device (a launcher handed this job a GPU)
    prints one warning line on stderr, once per process.
    """
    global _warned
    if isinstance(name, torch.device):
        dev = name
    elif name is None or str(name).lower() == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        visible = _handed_a_gpu()
        if visible is not None and not _warned:
            _warned = True
            print(f"warning: device=auto runs on the CPU although CUDA_VISIBLE_DEVICES={visible} hands this job "
                  f"a GPU: {_cuda_usable()[1]}", file=sys.stderr, flush=True)
        return torch.device("cpu")
    else:
        try:
            dev = torch.device(str(name))
        except (RuntimeError, ValueError):
            raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        ok, why = _cuda_usable()
        if not ok:
            raise ConfigError(f"ensemble.device={name} requested but {why}; use device=auto or cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"ensemble.device={name} requested but only {torch.cuda.device_count()} CUDA "
                              f"device(s) are visible")
    return dev


def device_report(device: torch.device, precision: str, deterministic: bool = False) -> dict:
    """What ran where, for ``summary.json``: the device name, the resolved precision, torch,
    CUDA and cuDNN versions (null without CUDA) and whether deterministic kernels were asked for."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        import platform
        name = f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    cudnn = torch.backends.cudnn.version() if torch.cuda.is_available() else None
    return {"type": device.type, "name": name, "precision": precision, "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": cudnn, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "deterministic": bool(deterministic)}


def host_to_device(t: torch.Tensor, device) -> torch.Tensor:
    """Copy a small host tensor that is made anew on the host each epoch (the shuffles) to
    ``device``; to CUDA through pinned memory and without blocking the host (the caching host
    allocator reuses the pinned buffers and keeps each alive until its copy has run)."""
    device = torch.device(device)
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)
