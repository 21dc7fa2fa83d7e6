"""``hydra/launcher=certssb_gpu``: each multirun job in its own fresh process, on a free GPU.

Usage::

    python -m certssb.run -m hydra/launcher=certssb_gpu seed=0,1,2,3            # all visible GPUs
    python -m certssb.run -m hydra/launcher=certssb_gpu hydra.launcher.gpus=[0,2] seed=0,1,2,3
    python -m certssb.run -m hydra/launcher=certssb_gpu hydra.launcher.jobs_per_gpu=2 ...
    CUDA_VISIBLE_DEVICES=2,3 python -m certssb.run -m hydra/launcher=certssb_gpu ...

How it works
------------
It reuses ``hydra-submitit-launcher``'s ``BaseSubmititLauncher`` (its ``__call__`` runs one job
inside the child process exactly like ``submitit_local`` does) and submitit's ``LocalExecutor``,
which starts a new Python process for every submission and sets that process's
``CUDA_VISIBLE_DEVICES`` from ``update_parameters(visible_gpus=..., gpus_per_node=...)``. Unlike
``submitit_local`` (one array, same GPUs for all jobs, all started at once) it submits the jobs one
by one from a pool of slots:

1. GPUs are found once (``slots.discover_gpus``): ``hydra.launcher.gpus`` if given, else the ids
   in the launching shell's ``CUDA_VISIBLE_DEVICES`` (respected; ``""``/``-1`` mean none), else
   the MIG devices that ``nvidia-smi -L`` lists (one slot per MIG UUID), else
   ``torch.cuda.device_count()``, else ``nvidia-smi -L``'s GPUs. ``gpus_per_job > 1`` with MIG
   devices cannot be honoured (a process uses one MIG device): one ``error:`` line, exit 2.
   Jobs get ``CERTSSB_JOBS_PER_GPU=<jobs_per_gpu>`` so that each sizes its groups for its share.
2. Every GPU (group of ``gpus_per_job`` GPUs) has ``jobs_per_gpu`` slots (default 1); at most
   ``max_parallel`` (default: all slots) jobs run at once.
3. While a slot is free and jobs wait, the next job (in sweep order) is submitted with its slot's
   GPU id(s) as the only visible GPUs. Every ``poll_interval_s`` the running jobs are polled with
   ``job.done()``; a finished job's slot is freed and the next job is submitted into it. A GPU is
   therefore never used by more than ``jobs_per_gpu`` running jobs.
4. Results come back in job order. A failed job (exception in the task, crash, timeout) becomes a
   ``JobReturn`` with ``status=FAILED`` holding the error, as with Hydra's other launchers: the
   other jobs run to the end and Hydra reports the failure (exit code 1) afterwards.

Without GPUs the jobs run on the CPU with ``CUDA_VISIBLE_DEVICES=""``, ``max_parallel`` (default
1) at a time. The jobs' stdout/stderr go to ``hydra.launcher.submitit_folder``
(``<sweep dir>/.submitit/<job id>/``); Hydra's own per-job log is in the job's output dir as usual.
``timeout_min`` (default 24 h) kills a job that runs too long; it is not requeued
(``max_num_timeout: 0``) unless you raise it.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher import submitit_launcher as _submitit_launcher

from .slots import Slot, SlotPool, discover_gpus, slot_executor_parameters

log = logging.getLogger(__name__)

# submitit waits up to 15 s for a finished job's result pickle (for slow cluster filesystems).
# A local job writes it before its process exits, so a crashed job (no pickle) would block the
# scheduler for 15 s; wait at most this long instead.
RESULTS_TIMEOUT_S = 1.0


class CertSSBGPULauncher(_submitit_launcher.BaseSubmititLauncher):
    """Hydra launcher: one fresh local process per job, each pinned to a free GPU slot."""

    _EXECUTOR = "local"

    # ------------------------------------------------------------------ helpers
    def _param(self, key: str, default: Any = None) -> Any:
        value = self.params.get(key, default)
        return default if value is None else value

    def make_pool(self) -> Tuple[SlotPool, str]:
        gpus, source = discover_gpus(self.params.get("gpus"))
        pool = SlotPool(
            gpus,
            jobs_per_gpu=int(self._param("jobs_per_gpu", 1)),
            gpus_per_job=int(self._param("gpus_per_job", 1)),
            max_parallel=self.params.get("max_parallel"),
        )
        return pool, source

    def _make_executor(self) -> Any:
        from submitit.local.local import LocalExecutor  # lazy: plugin discovery must stay fast

        executor = LocalExecutor(
            folder=self.params["submitit_folder"],
            max_num_timeout=int(self._param("max_num_timeout", 0)),
        )
        executor.update_parameters(
            timeout_min=float(self._param("timeout_min", 24 * 60)),
            tasks_per_node=1,
            nodes=1,
            stderr_to_stdout=bool(self._param("stderr_to_stdout", False)),
        )
        return executor

    def _remove_placeholder_folder(self) -> None:
        """submitit creates the folder as given, literally ``.../%j``; jobs use their own folders
        (``%j`` replaced by the job id), so the empty placeholder is removed after the sweep."""
        folder = str(self.params["submitit_folder"])
        if "%j" in folder:
            try:
                Path(folder).expanduser().absolute().rmdir()
            except OSError:  # absent or (unexpectedly) not empty: leave it
                pass

    @staticmethod
    def _failed_return(overrides: Sequence[str], error: BaseException) -> JobReturn:
        ret = JobReturn()
        ret.overrides = list(overrides)
        ret.status = JobStatus.FAILED
        ret.return_value = error
        return ret

    def _collect(self, job: Any, overrides: Sequence[str], idx: int, slot: Slot) -> JobReturn:
        try:
            ret = job.results()[0]
        except Exception as err:  # crash, kill, timeout: no result pickle or an error pickle
            log.error("#%d (%s) failed: %s", idx, slot.describe(), str(err).splitlines()[0])
            return self._failed_return(overrides, err)
        if not isinstance(ret, JobReturn):  # pragma: no cover - defensive
            return self._failed_return(
                overrides, RuntimeError(f"job #{idx} returned {type(ret).__name__}, not JobReturn")
            )
        if ret.status == JobStatus.FAILED:
            log.error("#%d (%s) failed (see its log in %s)", idx, slot.describe(), job.paths.folder)
        return ret

    # ------------------------------------------------------------------ launch
    def _open_pool(self) -> SlotPool:
        """The slot pool, announced in the log; a setting that cannot be honoured is one
        ``error:`` line and exit 2. Jobs learn their share of a GPU from ``CERTSSB_JOBS_PER_GPU``."""
        try:
            pool, source = self.make_pool()
        except ValueError as exc:  # a launcher setting that cannot be honoured: one line, exit 2
            print(f"error: hydra.launcher: {exc}", file=sys.stderr, flush=True)
            sys.exit(2)
        if pool.gpus_per_job > 1 and pool.gpus:
            log.warning(
                "certssb_gpu: gpus_per_job=%d: each job sees %d GPUs; the certssb pipeline trains on "
                "the first (cuda:0) only", pool.gpus_per_job, pool.gpus_per_job)
        # each job sizes its vmapped groups for its share of the GPU (certssb.ensemble.group_size)
        os.environ["CERTSSB_JOBS_PER_GPU"] = str(pool.jobs_per_gpu if pool.gpus else 1)
        if pool.gpus:
            log.info(
                "certssb_gpu: GPUs %s (from %s), %d job(s) per GPU, %d GPU(s) per job, "
                "up to %d job(s) at once",
                list(pool.gpus), source, pool.jobs_per_gpu, pool.gpus_per_job, pool.capacity)
        else:
            log.info(
                "certssb_gpu: no GPU (%s): jobs run on the CPU with CUDA_VISIBLE_DEVICES='', "
                "up to %d at once (hydra.launcher.max_parallel)", source, pool.capacity)
        return pool

    def _make_sweep_dir(self) -> None:
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
        log.info(f"certssb_gpu sweep output dir : {self.config.hydra.sweep.dir}")

    def _submit(self, executor: Any, slot: Slot, overrides: Sequence[str], idx: int, setup: list) -> Any:
        """Job ``idx`` submitted into ``slot`` (its GPU ids the only visible ones)."""
        executor.update_parameters(**slot_executor_parameters(slot, setup))
        job = executor.submit(self, list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}",
                              Singleton.get_state())
        job._results_timeout_s = RESULTS_TIMEOUT_S
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}  [{slot.describe()}, pid {job.job_id}]")
        return job

    def _schedule(self, pool: SlotPool, job_overrides: Sequence[Sequence[str]],
                  initial_job_idx: int) -> List[Optional[JobReturn]]:
        """Submit the jobs in sweep order while slots are free, collect each as it finishes and
        free its slot; on any exception (Ctrl-C included) cancel the running jobs."""
        executor = self._make_executor()
        setup = list(self._param("setup", []))
        poll = max(0.01, float(self._param("poll_interval_s", 0.5)))
        pending: Deque[int] = deque(range(len(job_overrides)))
        running: Dict[int, Tuple[Any, Slot]] = {}
        results: List[Optional[JobReturn]] = [None] * len(job_overrides)
        try:
            while pending or running:
                while pending and pool.has_free():
                    k = pending.popleft()
                    slot = pool.acquire()
                    assert slot is not None
                    running[k] = (self._submit(executor, slot, job_overrides[k], initial_job_idx + k, setup), slot)
                finished = [k for k, (job, _) in running.items() if job.done()]
                for k in finished:
                    job, slot = running.pop(k)
                    results[k] = self._collect(job, job_overrides[k], initial_job_idx + k, slot)
                    pool.release(slot)
                if running and not finished:
                    time.sleep(poll)
        except BaseException:
            for job, _ in running.values():
                try:
                    job.cancel(check=False)
                except Exception:  # pragma: no cover
                    pass
            raise
        return results

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        assert self.config is not None
        assert len(job_overrides) > 0
        pool = self._open_pool()
        self._make_sweep_dir()
        try:
            results = self._schedule(pool, job_overrides, initial_job_idx)
        finally:
            self._remove_placeholder_folder()
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]
