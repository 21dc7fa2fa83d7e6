"""The ``certssb_slurm`` preset's launcher with submitit's local executor in place of ``sbatch``.

Tests select it with ``hydra/launcher=certssb_slurm
hydra.launcher._target_=hydra_plugins.certssb_slurm_local_adapter.SlurmPresetOnLocalExecutor`` (with this folder on
PYTHONPATH): every parameter of the preset is composed and handed to submitit exactly as on a
cluster; submitit's AutoExecutor drops the ``slurm_*`` ones for the local executor, which runs each
job in its own process and reads its result back like a SLURM job's.
"""

from __future__ import annotations

import submitit
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher


class SlurmPresetOnLocalExecutor(SlurmLauncher):
    def launch(self, job_overrides, initial_job_idx):
        real = submitit.AutoExecutor

        def local_executor(folder, cluster=None, **kwargs):
            return real(folder, cluster="local", **kwargs)

        submitit.AutoExecutor = local_executor
        try:
            return super().launch(job_overrides, initial_job_idx)
        finally:
            submitit.AutoExecutor = real
