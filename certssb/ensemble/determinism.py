"""``ensemble.deterministic``: deterministic kernels and no TF32 for the whole process.

With it, a member's parameters depend only on (seed, member, data, sigmas, settings) and on the
members it is trained with, which ``group_size.plan_groups`` fixes: a resumed, split or
uninterrupted run gives bit-identical members on the same device, GPU model and library versions.
Without it (the default) cuDNN may pick its fastest, non-deterministic algorithms and matmuls use
TF32 where allowed, so reruns on a GPU agree only up to float rounding (the certificates are
sound either way: every member is a fixed function of its own noise, whatever its rounding).
"""

from __future__ import annotations

import contextlib
import os

import torch

CUBLAS_WORKSPACE = ":4096:8"


@contextlib.contextmanager
def deterministic_kernels(enabled: bool):
    """Within the block (``enabled``): cuDNN deterministic and not benchmarking, TF32 off for
    matmuls and convolutions, ``torch.use_deterministic_algorithms`` (warning only where an op
    has no deterministic kernel) and cuBLAS's fixed workspace (``CUBLAS_WORKSPACE_CONFIG``,
    effective when set before the process's first cuBLAS call, so it stays set). The previous
    switches are restored on exit. Disabled: nothing is changed."""
    if not enabled:
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    saved = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
             torch.backends.cuda.matmul.allow_tf32, torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled())
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
         torch.backends.cuda.matmul.allow_tf32) = saved[:4]
        torch.use_deterministic_algorithms(saved[4], warn_only=saved[5])
