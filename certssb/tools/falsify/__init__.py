"""Empirical falsification checks of the certificates: try to break them with real attacks.

Two families (``--family``), each a runner that retrains with the same seeds after the attack:

**gaussian** (docs/METHOD.md sections 1-3): the certificate says that, with the smoothing
distribution held fixed (the same per-sample sigmas, member seeds, training and test noise), the
smoothed prediction on ``(D, x)`` equals the one on ``(D + Delta, x + delta)`` for every joint
perturbation of the FEATURES (labels fixed) with ``sqrt(||delta||^2 + sum_i ||delta_i||^2) <
R_joint(x)``.

1. digits, classes [0, 1]; per-sample sigmas (SGA through a surrogate trained with ``sigma_0``:
   Cert-SSB, with ``objective`` paper or joint and an optional training ``floor``; one fixed sigma:
   RAB; ``grid``: members trained at ``sigma_0`` and each input's test sigma chosen from
   ``test_sigmas`` with the union bound; or ``grid_ensembles``: one ensemble per value of
   ``sigma_trains`` and each input's (training sigma, test sigma) pair chosen with the union bound)
   computed ONCE on the clean data and then held fixed; N members (per ensemble) trained on the
   clean set; test inputs certified (hard votes, Clopper-Pearson) with
   ``R_joint = min(sigma_x, s_train) * G / 2``, ``s_train`` the certificate's training sigma.
2. real clean-label poisoning (feature collision, :mod:`.gaussian_attack`): the class-t training
   samples nearest to the attacked inputs are moved TOWARDS them and every attacked input towards
   its nearest poisoned class-t sample, every (Delta, x) pair of joint L2 size
   ``<= scale * R_joint(x)`` (realised sizes recomputed from the tensors and checked). With
   ``test_attack="pgd"`` (default) the test perturbation is then refined by L2 PGD against the
   RETRAINED ensemble (:mod:`.gaussian_pgd`), projected onto the same budget and onto [0, 1].
3. the N members are retrained on ``D + Delta`` with the same seeds and sigmas and predict on
   ``x + delta_x`` with the clean ``sigma_x`` and test-noise indices (:mod:`.gaussian_runner`); a
   pair "flips" when the smoothed prediction differs from the clean one. A control retrain on the
   unchanged data must reproduce the clean votes exactly.
4. scale 0.5 (R/2) is the falsification check (expected: no flip); larger scales (default 2x, 4x
   and 10x R) are the power check showing that the test can fail (:mod:`.gaussian_scales`).

**count** (docs/METHOD.md section 8.2; :mod:`.count_report`): digits, a partition ensemble (DPA,
``key: index``, a few dozen parts), Finite Aggregation (``key: index``), run-off election on
either (``--certifier roe``), or bagging; models trained without noise. For test inputs with
certificate c >= 1 (any c training samples changed arbitrarily cannot change the prediction):
k = c training samples placed in the parts (FA: buckets) that voted for the prediction, each
replaced by the test input itself labelled with the runner-up (:mod:`.count_attack`); only the
models whose training subsets changed are retrained, with the same seeds and subsets, the others
are reused (:mod:`.count_runner`). No prediction may change; at the power counts (default
k = c + 1 and 2c + 2) some must.

CLI (:mod:`.cli`): ``python -m certssb.tools.falsify [--family gaussian|count] [--members N]
[--attacks K] [--out DIR] [--seed S] ...``; writes ``falsify.json`` into ``--out`` and prints
``falsification: tried=<n> flipped=<m> (within R/2 | k <= certificate); power check: tried=<n>
flipped=<m> (...)``.
"""

from .cli import build_parser, main
from .config import CountFalsifyConfig, FalsifyConfig
from .count_report import run_count_falsification
from .gaussian_attack import build_attack, walk
from .gaussian_report import run_falsification, summary_line
from .gaussian_scales import ScaleResult

__all__ = ["CountFalsifyConfig", "FalsifyConfig", "ScaleResult", "build_attack", "build_parser", "main",
           "run_count_falsification", "run_falsification", "summary_line", "walk"]
