"""Structured config of the ``certssb_gpu`` launcher (group ``hydra/launcher``).

Select it with ``hydra/launcher=certssb_gpu`` on the command line (or in a primary config's
defaults: ``override hydra/launcher: certssb_gpu``).
"""

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class CertSSBGPULauncherConf:
    """Every job of a ``--multirun`` in its own fresh process, pinned to a free GPU."""

    _target_: str = "hydra_plugins.certssb_gpu_launcher.gpu_launcher.CertSSBGPULauncher"

    # GPU ids to use (written into each job's CUDA_VISIBLE_DEVICES; ints or GPU-/MIG- UUIDs).
    # null: CUDA_VISIBLE_DEVICES of the launching shell if set (its ids; "" or -1 = none), else
    # torch.cuda.device_count(), else nvidia-smi -L; nothing found -> jobs run on the CPU.
    # [] forces CPU mode.
    gpus: Optional[List[Any]] = None
    # how many jobs may share one GPU at once
    jobs_per_gpu: int = 1
    # how many GPUs each job gets (disjoint groups of consecutive ids)
    gpus_per_job: int = 1
    # cap on concurrently running jobs; null -> number of GPU slots (len(gpus) // gpus_per_job *
    # jobs_per_gpu), or 1 on a machine without GPUs. On the CPU it is the number of parallel jobs.
    max_parallel: Optional[int] = None
    # wall-clock limit per job (submitit kills the job after it; it is then reported failed)
    timeout_min: float = 24 * 60
    # how often the launcher checks whether a running job finished
    poll_interval_s: float = 0.5
    # submitit's folder for pickles and the jobs' stdout/stderr logs (%j = job id)
    submitit_folder: str = "${hydra.sweep.dir}/.submitit/%j"
    # shell lines run before each job (e.g. "source env.sh"); runs the job through a shell
    setup: List[str] = field(default_factory=list)
    # merge each job's stderr into its stdout log
    stderr_to_stdout: bool = False


ConfigStore.instance().store(
    group="hydra/launcher",
    name="certssb_gpu",
    node=CertSSBGPULauncherConf,
    provider="certssb_gpu_launcher",
)
