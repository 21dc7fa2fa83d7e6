"""How many members a vmapped group holds, and which members form each group.

CUDA: the group size comes from a measured trial step. One training step (forward, backward,
Adam) of a group of 1 and of ``TRIAL_LARGE`` members is run on a slice of the real data, and the
allocator's peak allocated memory above the starting level is read after each
(``torch.cuda.max_memory_allocated``: it counts every temporary, the noise generator's included,
and nothing cached by earlier stages). The difference gives the bytes per member, the group of one
the fixed part. The budget is ``GPU_MEMORY_FRACTION`` of the device's total memory divided by the
number of jobs that share the GPU (``CERTSSB_JOBS_PER_GPU``, set by the ``certssb_gpu`` launcher),
less what this process holds already; the materialised noisy training copy (``NoisySource``) is
added per member. Free memory (``mem_get_info``) is never read: it races with other jobs and
does not see the allocator's cache.

CPU: unchanged, an estimate from the parameter count and activation size (``cpu_group_size``).

Group composition (``plan_groups``): by default consecutive members of the to-do list. With
``ensemble.deterministic`` the groups are fixed member-index blocks ``[b*G, (b+1)*G)`` and a block
with any missing member is trained whole (only its missing members are saved), so a member is
always trained with the same companions: resumed, split by ``member_range`` or not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Protocol

import torch
from torch import nn

GPU_MEMORY_FRACTION = 0.8
GPU_MAX_GROUP = 1024
TRIAL_LARGE = 4
CPU_MAX_GROUP = 64
CPU_BUDGET_BYTES = 1 << 30
JOBS_PER_GPU_ENV = "CERTSSB_JOBS_PER_GPU"


class MemoryProbe(Protocol):
    """What the sizing reads from a device's allocator (a fake one in the tests)."""

    def total(self) -> int: ...

    def allocated(self) -> int: ...

    def reset_peak(self) -> None: ...

    def peak(self) -> int: ...


class CudaMemoryProbe:
    """The CUDA caching allocator's counters of one device."""

    def __init__(self, device: torch.device):
        self.device = torch.device(device)

    def total(self) -> int:
        return int(torch.cuda.get_device_properties(self.device).total_memory)

    def allocated(self) -> int:
        torch.cuda.synchronize(self.device)
        return int(torch.cuda.memory_allocated(self.device))

    def reset_peak(self) -> None:
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)

    def peak(self) -> int:
        torch.cuda.synchronize(self.device)
        return int(torch.cuda.max_memory_allocated(self.device))


def jobs_per_gpu(environ=None) -> int:
    """How many jobs share this process's GPU (``CERTSSB_JOBS_PER_GPU``, default 1)."""
    env = os.environ if environ is None else environ
    try:
        return max(1, int(env.get(JOBS_PER_GPU_ENV, "1")))
    except ValueError:
        return 1


@dataclass(frozen=True)
class GroupSizing:
    """The arithmetic of one sizing, kept for logs and the benchmark."""

    group_size: int
    per_member_bytes: int
    fixed_bytes: int
    budget_bytes: int


def size_from_trial(trial: Callable[[int], None], probe: MemoryProbe, n_members: int, share: int = 1,
                    extra_per_member: int = 0, deterministic: bool = False,
                    fraction: float = GPU_MEMORY_FRACTION, cap: int = GPU_MAX_GROUP) -> GroupSizing:
    """Group size from ``trial(g)`` (one training step of ``g`` members) measured by ``probe``.

    ``per_member = (peak(TRIAL_LARGE) - peak(1)) / (TRIAL_LARGE - 1) + extra_per_member``,
    ``fixed = peak(1) - per_member`` (at least 0), ``budget = fraction * total / share -
    allocated``, ``G = (budget - fixed) // per_member`` clipped to ``[1, min(cap, n_members)]``.
    With ``deterministic`` the process's allocated memory is not subtracted (it may differ
    between a fresh and a resumed run) and G is rounded down to a power of two, so that small
    differences in the measurement cannot change the blocks; ``n_members`` must then be the
    ensemble's size, not the number of members this call trains.
    """
    base = probe.allocated()
    peaks = {}
    for g in (1, TRIAL_LARGE):
        probe.reset_peak()
        trial(g)
        peaks[g] = max(0, probe.peak() - base)
    per = max(1, (peaks[TRIAL_LARGE] - peaks[1]) // (TRIAL_LARGE - 1)) + max(0, int(extra_per_member))
    fixed = max(0, peaks[1] - per)
    budget = int(fraction * probe.total() / max(1, int(share))) - (0 if deterministic else base)
    g = max(1, (budget - fixed) // per)
    if deterministic:
        g = 1 << (int(g).bit_length() - 1)
        # the caller passes the ensemble's n_members (not the members this call trains)
        return GroupSizing(int(max(1, min(cap, g, n_members))), int(per), int(fixed), int(budget))
    return GroupSizing(int(max(1, min(cap, g, n_members))), int(per), int(fixed), int(budget))


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


def cpu_group_size(model: nn.Module, input_shape, batch_size: int, n_members: int, training: bool = True,
                   deterministic: bool = False) -> int:
    """Members per group on the CPU: parameters, gradients and two Adam moments (4 x params)
    plus forward and backward activations (about 3 x activations x batch), float32, within
    ``CPU_BUDGET_BYTES``, at most ``CPU_MAX_GROUP`` (bigger groups stop paying off on a few
    cores; measured 3.4x over one at a time with 64 against 3.2x with 32 for the digits MLP on
    2 cores). ``n_members``: with ``deterministic``, the ensemble's size (so that the result does
    not depend on resume or ``member_range``)."""
    n_params = sum(p.numel() for p in model.parameters())
    act = activation_elems(model, input_shape)
    per_member = 4 * ((4 if training else 1) * n_params + 3 * batch_size * act)
    g = max(1, min(CPU_MAX_GROUP, int(CPU_BUDGET_BYTES // max(per_member, 1))))
    return max(1, min(g, n_members))


def plan_groups(todo: list[int], g: int, deterministic: bool = False, n_members: int | None = None,
                sizes: list[int] | None = None) -> list[tuple[list[int], list[int]]]:
    """``[(members to train together, members of those to save)]`` for the missing ``todo``.

    Default: consecutive chunks of ``todo`` (each trained member is saved). Deterministic: the
    blocks ``[b*g, min((b+1)*g, n_members))`` that contain a missing member, each trained whole;
    only its members in ``todo`` are saved. ``sizes`` (the training-subset size of every member of
    the ensemble): members of one size are planned together, class by class in order of first
    appearance, so every group trains on subsets of one size (deterministic blocks then run over
    the members of a size class, a fixed function of the ensemble).
    """
    g = max(1, int(g))
    if sizes is not None:
        classes: dict[int, list[int]] = {}
        for k, size in enumerate(sizes):
            classes.setdefault(int(size), []).append(k)
        plan = []
        for ks in classes.values():
            members = set(ks)
            wanted = [k for k in todo if k in members]
            if not wanted:
                continue
            if not deterministic:
                plan += [(wanted[s:s + g], wanted[s:s + g]) for s in range(0, len(wanted), g)]
                continue
            position = {k: i for i, k in enumerate(ks)}
            keep = set(wanted)
            for b in sorted({position[k] // g for k in wanted}):
                block = ks[b * g:(b + 1) * g]
                plan.append((block, [k for k in block if k in keep]))
        return plan
    if not deterministic:
        return [(todo[s:s + g], todo[s:s + g]) for s in range(0, len(todo), g)]
    end = max([int(n_members or 0)] + [k + 1 for k in todo])
    wanted = set(todo)
    plan = []
    for b in sorted({k // g for k in todo}):
        block = list(range(b * g, min((b + 1) * g, end)))
        plan.append((block, [k for k in block if k in wanted]))
    return plan
