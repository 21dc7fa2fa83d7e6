"""``certssb_gpu``: a Hydra launcher that runs each multirun job in a fresh process on a free GPU.

Built on ``hydra-submitit-launcher``'s ``BaseSubmititLauncher`` and submitit's ``LocalExecutor``
(one new process per job, ``CUDA_VISIBLE_DEVICES`` set per submission). See ``gpu_launcher.py``
(usage and scheduling rules in its module docstring).
"""

__version__ = "0.1.0"
