"""Collect finished runs and sweeps of both families into one table and overlay plots.

    python -m certssb.tools.report <sweep or run dirs...> [--out DIR] [--split clean|triggered]
                             [--variant joint] [--group-by PARAM]
    python -m certssb.tools.report --wandb ENTITY/PROJECT [--group G] [--out DIR] ...

The modules: reading runs from local folders (:mod:`.local_runs`, Hydra's files in
:mod:`.overrides`) or from W&B's public API (:mod:`.wandb_runs`: their summary scalars and
config, the same files written, default ``--out ./report``); the table (:mod:`.table`); the
Markdown, CSV files and figures (:mod:`.markdown`, :mod:`.radius_plot`, the k-axis overlay of
:mod:`certssb.tools.one_axis_plot`); the command line (:mod:`.cli`).

A *run dir* is any directory holding Hydra's ``.hydra/`` folder (``overrides.yaml``,
``config.yaml``) and, once the pipeline finished, ``summary.json``. Sweep dirs (numbered job
subdirs plus ``multirun.yaml``) and any parent directory are searched recursively.

Writes into ``--out`` (default: the single input dir, or ``./report`` for several inputs):

- ``report.csv`` / ``report.md``: one row per complete run: ``run_dir``, ``status``, ``method``,
  ``seed``, ``n_members`` (models trained: members, parts or bags), ``family`` (gaussian | count),
  the swept parameters (the union of the runs' override keys; a run without that override gets
  the value from its ``.hydra/config.yaml`` when it is a plain value), ``ca@<r>`` = certified
  accuracy at each grid radius for ``--split``/``--variant`` (Gaussian runs; default the sound
  ``joint``; ``paper`` is a test-time/evasion certificate), ``pc@<k>`` = certified accuracy against
  ``k`` poisoned training samples with their labels unchanged (``curves.<split>.poison_count``;
  sound Gaussian variants only), ``ac@<k>`` = certified accuracy against ANY ``k`` training samples
  changed arbitrarily (``curves.<split>.any_count``; every family), then ``accuracy``,
  ``certified_ratio``, ``acr`` (of that split and variant; the scalar ``acr`` in summary.json is the
  sound joint one), ``covered_exact`` (share of inputs whose sound certificate covers the realised
  attack by the exact ellipsoid test), ``clean_accuracy``, ``asr``, ``undefended_clean_accuracy``,
  ``undefended_asr``, ``attack_joint_l2``, ``realised_attack_certified_clean`` /
  ``realised_attack_certified_triggered`` (share of the set's inputs correct and certified against
  the attack as run, either family), ``any_count_median`` (median certified count of ``--split``),
  ``sigma_s`` (choosing the sigmas: surrogate + SGA), ``train_s`` (training the models),
  ``total_s`` (from ``summary.json`` ``timings``).
- ``seeds.csv`` and a "Mean over seeds" section of ``report.md``: runs that differ only in
  ``seed`` averaged (mean and sample standard deviation; see :mod:`certssb.tools.seeds`).
- ``missing.csv`` and a "Missing or failed" section of ``report.md``: runs without
  ``summary.json``, with an unreadable one, or whose status is not ``complete`` (never fatal).
- ``curves_<split>_<variant>.png``: certified accuracy vs radius, one line per Gaussian run; colour
  by the ``--group-by`` parameter (default: the first swept parameter that varies), line style by
  run within a group.
- ``any_count_<split>.png``: every family on the k axis, one curve per group of seeds (the mean).

Exit status: 0 on success, 2 (with one ``error: ...`` line on stderr) when no run is found or an
argument is wrong.
"""

from .cli import build_parser, main
from .local_runs import collect_runs, find_run_dirs
from .markdown import write_report
from .overrides import parse_overrides
from .wandb_runs import collect_wandb_runs

__all__ = ["build_parser", "collect_runs", "collect_wandb_runs", "find_run_dirs", "main", "parse_overrides",
           "write_report"]
