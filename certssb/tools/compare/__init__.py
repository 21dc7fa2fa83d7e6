"""Side-by-side certified accuracy of several runs of either family (e.g. RAB vs Cert-SSB vs DPA).

    python -m certssb.tools.compare RUN_DIR [RUN_DIR ...] [--split clean|triggered] [--out FILE.md]
                                    [--figure FILE.png]

The Gaussian runs' headline table leads with the sound ACR (``joint``) and the share of inputs whose
sound certificate covers the realised attack (exact ellipsoid test); ``paper`` is a test-time
(evasion) certificate and is labelled so. Then every run, of either family, on the axis they share
(docs/METHOD.md 8.3; :mod:`certssb.tools.one_axis`): the family, models trained, training time,
clean accuracy, the realised attack certified on the clean and triggered sets and the median
certified count of training samples changed arbitrarily. Per test set: the Gaussian runs' L2 curves
(the sound variant first, with and without memory) as columns over the radius grid (the runs must
share it; count runs certify no radius and are left out), certified accuracy against k poisoned
samples with labels unchanged (Gaussian), and against any k changed samples (every run);
``--figure`` draws the last as an overlay (:mod:`certssb.tools.one_axis_plot`).

Each run is labelled by what distinguishes it from the other runs compared (:mod:`.facts`): its
method, then every config value in which the runs differ (``key=value``; N = the models trained,
alpha = ``certifier.alpha``), read from ``summary.json`` and, where the run has Hydra's
``.hydra/`` folder, from its ``config.yaml``, ``hydra.yaml`` (the options chosen) and
``overrides.yaml``. A value that follows from a differing option choice is not repeated unless it
was overridden or is a headline key (certifier mode, N, alpha, seed, sigma_0). When the runs differ
in more than the method (Gaussian family: the ``sigma_optimiser`` choice and its settings; count
family: the ``ensemble`` and ``certifier`` choices and their settings, training settings excluded),
ONE ``warning:`` line on stderr names what else differs. Between the families, N (members vs parts
or bags) and the ensembles', certifiers' and training settings differ by design: they are named
as expected (in the warning, or in one ``note:`` line when nothing else differs). Keys that change
neither results nor certificates (logging, devices, ``force``) are not named.
"""

from .cli import build_parser, load, main
from .facts import differences, labels, mismatch_warning, run_facts
from .tables import metrics_table, poison_table, radius_table

__all__ = ["build_parser", "differences", "labels", "load", "main", "metrics_table", "mismatch_warning",
           "poison_table", "radius_table", "run_facts"]
