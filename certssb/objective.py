"""The number a Hydra sweeper (Optuna, Ax, Nevergrad) optimises: one value of the run's summary.

``optimized_metric`` (``conf/config.yaml``) names it, either as a path into ``summary.json``
(``.`` or ``/`` separated: ``metrics.clean.acr``, ``metrics.clean.acr_by_variant.paper``) or as a
W&B summary name (:func:`certssb.logger.flatten.summary_scalars`: ``ca/clean/joint/r0_5``,
``metrics/clean/accuracy``). Default :data:`DEFAULT_METRIC`: the sound average certified radius
of the clean test set (``metrics.clean.acr``, the ``joint`` radius variant, equal to
``metrics.clean.acr_by_variant.joint``), to maximise. The entry point turns the value into what
a sweeper accepts (:func:`certssb.run.sweep_return`).
"""

from __future__ import annotations

import math
import numbers

from certssb.errors import ConfigError

#: the sound clean average certified radius (``summary["metrics"]["clean"]["acr"]``, the joint variant)
DEFAULT_METRIC = "metrics.clean.acr"


def _walk(summary: dict, parts: list[str]):
    node = summary
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None, False
        node = node[part]
    return node, True


def optimized_value(summary: dict, metric_path: str = DEFAULT_METRIC) -> float:
    """``summary``'s value at ``metric_path`` as a float, for the Hydra task function to return.

    A run that did not complete (``status`` other than ``complete``) and a metric that is null in
    the summary (e.g. no triggered set) give NaN. A path that names no number of a complete run
    is a one-line ConfigError ``optimized_metric=... ``.
    """
    if not isinstance(metric_path, str) or not metric_path.strip("./"):
        raise ConfigError(f"optimized_metric must be a path such as {DEFAULT_METRIC}; got {metric_path!r}")
    if summary.get("status", "complete") != "complete":
        return float("nan")
    parts = [p for p in metric_path.replace("/", ".").split(".") if p]
    value, found = _walk(summary, parts)
    if not found:
        from certssb.logger.flatten import metric_name, summary_scalars

        scalars = summary_scalars(summary)
        name = metric_name(metric_path)
        if name in scalars:
            value, found = scalars[name], True
    if not found:
        raise ConfigError(f"optimized_metric={metric_path!r} is not in the run's summary: use a path such as "
                          f"{DEFAULT_METRIC}, metrics.clean_accuracy or ca/clean/joint/r0_5")
    if value is None:
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"optimized_metric={metric_path!r} names a {type(value).__name__}, not a number: "
                          "choose a single metric such as " + DEFAULT_METRIC)
    value = float(value)
    return value if math.isfinite(value) else float("nan")
