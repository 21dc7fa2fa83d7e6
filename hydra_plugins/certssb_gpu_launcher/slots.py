"""Pure scheduling logic of the ``certssb_gpu`` launcher: GPU discovery and the slot pool.

Nothing here imports Hydra, submitit or torch at module level, so it is cheap to import (Hydra
imports every module under ``hydra_plugins`` when it scans for plugins) and easy to unit-test
with fake GPU lists and a fake environment.

Vocabulary
----------
GPU id
    What is written into a job's ``CUDA_VISIBLE_DEVICES``: an ``int`` (a device index as the
    driver sees it) or a ``str`` (a ``GPU-<uuid>`` or ``MIG-<uuid>`` identifier).
Group
    ``gpus_per_job`` GPUs that are handed to one job together (disjoint groups, in order).
Slot
    One place for a running job: a group plus a slot number. Every group has ``jobs_per_gpu``
    slots, so a GPU never holds more than ``jobs_per_gpu`` running jobs at once.

On a machine without GPUs there is a single CPU "group" with ``max_parallel`` slots (default 1)
and the jobs see ``CUDA_VISIBLE_DEVICES=""``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Callable, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

log = logging.getLogger(__name__)

GpuId = Union[int, str]

__all__ = [
    "GpuId",
    "Slot",
    "SlotPool",
    "discover_gpus",
    "parse_cuda_visible_devices",
    "count_gpus_nvidia_smi",
    "count_gpus_torch",
    "nvidia_smi_listing",
    "parse_nvidia_smi_listing",
    "slot_environment",
    "slot_executor_parameters",
]


def _as_gpu_id(value: object) -> GpuId:
    """``3`` / ``"3"`` -> ``3``; ``"GPU-ab12..."`` -> kept as a string."""
    if isinstance(value, bool):
        raise ValueError(f"invalid GPU id {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid GPU id {value!r}: ids are >= 0")
        return value
    text = str(value).strip()
    if not text:
        raise ValueError("empty GPU id")
    if re.fullmatch(r"\d+", text):
        return int(text)
    return text


def parse_cuda_visible_devices(value: str) -> List[GpuId]:
    """Parse a ``CUDA_VISIBLE_DEVICES`` string the way the CUDA runtime does.

    ``""`` -> ``[]`` (no GPU); ``"0,2"`` -> ``[0, 2]``; UUIDs are kept as strings. As in CUDA, a
    negative entry (``-1``) ends the list: ``"-1"`` -> ``[]``, ``"1,-1,2"`` -> ``[1]``.
    """
    ids: List[GpuId] = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        if re.fullmatch(r"-\d+", part):
            break
        gid = _as_gpu_id(part)
        if gid in ids:
            raise ValueError(f"GPU id {gid!r} listed twice in CUDA_VISIBLE_DEVICES={value!r}")
        ids.append(gid)
    return ids


def count_gpus_torch() -> Optional[int]:
    """``torch.cuda.device_count()``, or None when torch is not importable. Imported lazily."""
    try:
        import torch  # noqa: PLC0415  (lazy on purpose: plugin discovery must stay fast)
    except Exception:  # pragma: no cover - depends on the installation
        return None
    try:
        return int(torch.cuda.device_count())
    except Exception:  # pragma: no cover
        return None


def nvidia_smi_listing(timeout_s: float = 20.0) -> Optional[str]:
    """The text of ``nvidia-smi -L``, or None when it is absent or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        return subprocess.run(
            [exe, "-L"], capture_output=True, text=True, timeout=timeout_s, check=True
        ).stdout
    except Exception:  # pragma: no cover - depends on the machine
        return None


def parse_nvidia_smi_listing(text: str) -> List[Tuple[int, List[str]]]:
    """``[(gpu index, [MIG device UUIDs on it])]`` from ``nvidia-smi -L`` output.

    A GPU line is ``GPU 0: NVIDIA H100 ... (UUID: GPU-...)``; MIG devices follow it indented,
    ``MIG 3g.40gb Device 0: (UUID: MIG-...)`` (older drivers: ``MIG-GPU-<uuid>/<gi>/<ci>``).
    """
    gpus: List[Tuple[int, List[str]]] = []
    for line in text.splitlines():
        m = re.match(r"\s*GPU (\d+):", line)
        if m:
            gpus.append((int(m.group(1)), []))
            continue
        m = re.match(r"\s*MIG\b.*\(UUID:\s*(MIG-[^)\s]+)\)", line)
        if m and gpus:
            gpus[-1][1].append(m.group(1))
    return gpus


def count_gpus_nvidia_smi(timeout_s: float = 20.0) -> Optional[int]:
    """Number of ``GPU <n>:`` lines of ``nvidia-smi -L``, or None when it is absent or fails."""
    out = nvidia_smi_listing(timeout_s)
    return None if out is None else len(parse_nvidia_smi_listing(out))


def mig_devices(listing: Optional[str]) -> List[GpuId]:
    """The slots of a MIG host: each MIG device's UUID (a GPU without MIG devices: its index);
    ``[]`` when no GPU of the listing has MIG devices."""
    gpus = parse_nvidia_smi_listing(listing or "")
    if not any(migs for _, migs in gpus):
        return []
    out: List[GpuId] = []
    for index, migs in gpus:
        out.extend(migs if migs else [index])
    return out


def is_mig(gpu: GpuId) -> bool:
    return isinstance(gpu, str) and gpu.startswith("MIG-")


def discover_gpus(
    gpus: Optional[Iterable[object]] = None,
    environ: Optional[Mapping[str, str]] = None,
    torch_count: Callable[[], Optional[int]] = count_gpus_torch,
    smi_count: Callable[[], Optional[int]] = count_gpus_nvidia_smi,
    smi_listing: Callable[[], Optional[str]] = nvidia_smi_listing,
) -> Tuple[List[GpuId], str]:
    """Return ``(gpu_ids, source)``: the GPUs the launcher may hand out and where they came from.

    1. ``gpus`` given (explicit list, e.g. ``[0, 2]``; ``[]`` forces CPU): used as is.
    2. else ``CUDA_VISIBLE_DEVICES`` if set (``""`` or ``-1``: no GPU): the ids listed there.
    3. else, when ``nvidia-smi -L`` lists MIG devices: every MIG device's UUID is a slot (a CUDA
       process sees only one MIG device, so ``torch.cuda.device_count()`` would say 1).
    4. else ``torch.cuda.device_count()`` GPUs ``0..n-1``, when torch is importable and sees some.
    5. else ``nvidia-smi -L``'s GPU count.
    6. else no GPU (``[]``): jobs run on the CPU.
    """
    env = os.environ if environ is None else environ
    if gpus is not None:
        if isinstance(gpus, (str, int)):
            gpus = [gpus] if not isinstance(gpus, str) else parse_cuda_visible_devices(gpus)
        ids = [_as_gpu_id(g) for g in gpus]
        if len(set(ids)) != len(ids):
            raise ValueError(f"hydra.launcher.gpus lists a GPU twice: {ids}")
        visible = env.get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            allowed = parse_cuda_visible_devices(visible)
            outside = [g for g in ids if g not in allowed]
            if outside:
                log.warning(
                    "hydra.launcher.gpus=%s includes %s, which CUDA_VISIBLE_DEVICES=%r does not "
                    "list; the ids are used as given (they are written into each job's "
                    "CUDA_VISIBLE_DEVICES, i.e. they are driver ids, not indices into the "
                    "parent's list)",
                    ids,
                    outside,
                    visible,
                )
        return ids, "hydra.launcher.gpus"
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return parse_cuda_visible_devices(visible), "CUDA_VISIBLE_DEVICES"
    migs = mig_devices(smi_listing())
    if migs:
        return migs, "nvidia-smi -L (MIG devices)"
    n = torch_count()
    if n:
        return list(range(n)), "torch.cuda.device_count()"
    n = smi_count()
    if n:
        return list(range(n)), "nvidia-smi -L"
    return [], "none found"


@dataclass(frozen=True)
class Slot:
    """A place for one running job: the GPU group it uses and a slot number within the group."""

    group: int
    index: int
    gpus: Tuple[GpuId, ...]

    @property
    def is_cpu(self) -> bool:
        return not self.gpus

    def describe(self) -> str:
        if self.is_cpu:
            return f"CPU slot {self.index}"
        return "GPU " + ",".join(str(g) for g in self.gpus)


class SlotPool:
    """Free/busy bookkeeping of job slots; never hands a GPU to more than ``jobs_per_gpu`` jobs.

    Parameters
    ----------
    gpus:
        GPU ids (see :func:`discover_gpus`); empty -> CPU mode.
    jobs_per_gpu:
        How many jobs may share one GPU (group) at once (>= 1).
    gpus_per_job:
        How many GPUs each job gets (>= 1); the GPUs are split into disjoint groups of this size,
        left-over GPUs are unused (a warning says so).
    max_parallel:
        Upper bound on concurrently running jobs. ``None`` -> the number of GPU slots, or 1 on
        the CPU. On the CPU it is the number of slots.

    ``acquire()`` returns a free slot in the least-loaded group (so jobs spread over GPUs before
    they share one), or None when none is free or ``max_parallel`` jobs run already.
    """

    def __init__(
        self,
        gpus: Sequence[GpuId],
        jobs_per_gpu: int = 1,
        gpus_per_job: int = 1,
        max_parallel: Optional[int] = None,
    ) -> None:
        if int(jobs_per_gpu) < 1:
            raise ValueError(f"jobs_per_gpu must be >= 1, got {jobs_per_gpu}")
        if int(gpus_per_job) < 1:
            raise ValueError(f"gpus_per_job must be >= 1, got {gpus_per_job}")
        if max_parallel is not None and int(max_parallel) < 1:
            raise ValueError(f"max_parallel must be >= 1 or null, got {max_parallel}")
        gpus = [_as_gpu_id(g) for g in gpus]
        if len(set(gpus)) != len(gpus):
            raise ValueError(f"a GPU is listed twice: {gpus}")
        if int(gpus_per_job) > 1 and any(is_mig(g) for g in gpus):
            raise ValueError(
                f"gpus_per_job={int(gpus_per_job)} cannot be honoured on MIG devices: a CUDA process "
                f"uses only one MIG device; use gpus_per_job=1 (each MIG device is a slot)"
            )
        self.jobs_per_gpu = int(jobs_per_gpu)
        self.gpus_per_job = int(gpus_per_job)
        self.gpus: Tuple[GpuId, ...] = tuple(gpus)
        if self.gpus:
            n_groups = len(self.gpus) // self.gpus_per_job
            if n_groups == 0:
                raise ValueError(
                    f"gpus_per_job={self.gpus_per_job} but only {len(self.gpus)} GPU(s) "
                    f"available: {list(self.gpus)}"
                )
            unused = self.gpus[n_groups * self.gpus_per_job :]
            if unused:
                log.warning("GPUs %s are left unused (gpus_per_job=%d)", list(unused), self.gpus_per_job)
            self.groups: List[Tuple[GpuId, ...]] = [
                self.gpus[g * self.gpus_per_job : (g + 1) * self.gpus_per_job] for g in range(n_groups)
            ]
            per_group = self.jobs_per_gpu
            n_slots = n_groups * per_group
            self.max_parallel = n_slots if max_parallel is None else min(int(max_parallel), n_slots)
        else:
            cpu_slots = 1 if max_parallel is None else int(max_parallel)
            self.groups = [()]
            per_group = cpu_slots
            self.max_parallel = cpu_slots
        self._free: List[List[int]] = [list(range(per_group)) for _ in self.groups]
        self._busy: set = set()

    # ------------------------------------------------------------------ queries
    @property
    def capacity(self) -> int:
        """The number of jobs that may run at once."""
        return self.max_parallel

    @property
    def n_busy(self) -> int:
        return len(self._busy)

    def has_free(self) -> bool:
        return self.n_busy < self.max_parallel and any(self._free)

    def load(self) -> dict:
        """``{gpu_id: number of running jobs on it}`` (``{"cpu": n}`` in CPU mode)."""
        out: dict = {}
        for slot in self._busy:
            for g in slot.gpus or ("cpu",):
                out[g] = out.get(g, 0) + 1
        return out

    # ------------------------------------------------------------------ changes
    def acquire(self) -> Optional[Slot]:
        if not self.has_free():
            return None
        # least-loaded group first (most free slots), ties -> lowest group index
        g = max(range(len(self.groups)), key=lambda k: (len(self._free[k]), -k))
        index = self._free[g].pop(0)
        slot = Slot(group=g, index=index, gpus=tuple(self.groups[g]))
        self._busy.add(slot)
        return slot

    def release(self, slot: Slot) -> None:
        if slot not in self._busy:
            raise ValueError(f"{slot} is not in use")
        self._busy.remove(slot)
        self._free[slot.group].append(slot.index)
        self._free[slot.group].sort()


def slot_environment(slot: Slot) -> dict:
    """The environment variables a job in ``slot`` must see (``CUDA_VISIBLE_DEVICES``)."""
    return {"CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in slot.gpus)}


def slot_executor_parameters(slot: Slot, setup: Sequence[str] = ()) -> dict:
    """Parameters for ``submitit.LocalExecutor.update_parameters`` that pin a job to ``slot``.

    Integer ids go through submitit's own ``visible_gpus`` + ``gpus_per_node`` (submitit then
    sets ``CUDA_VISIBLE_DEVICES`` of the job's process to exactly these ids). submitit only
    accepts integers there, so UUID ids (``GPU-...``/``MIG-...``) are exported by a ``setup``
    shell line instead. A CPU slot gets ``gpus_per_node=0`` -> ``CUDA_VISIBLE_DEVICES=""``.
    """
    import shlex  # noqa: PLC0415

    setup = list(setup)
    if slot.is_cpu:
        return {"gpus_per_node": 0, "visible_gpus": (), "setup": setup}
    if all(isinstance(g, int) for g in slot.gpus):
        return {"gpus_per_node": len(slot.gpus), "visible_gpus": tuple(slot.gpus), "setup": setup}
    value = slot_environment(slot)["CUDA_VISIBLE_DEVICES"]
    return {
        "gpus_per_node": 0,
        "visible_gpus": (),
        "setup": setup + [f"export CUDA_VISIBLE_DEVICES={shlex.quote(value)}"],
    }
