"""Decision counts as CloudWatch metrics, one EMF record per (name, category, cloud).

Each count goes out on its own (powertools' `single_metric`) so every decision
keeps its own dimensions and the dimension sets stay small and fixed; the
namespace comes from POWERTOOLS_METRICS_NAMESPACE, as for powertools' Metrics.
Cores receive a `CountMetric` and call it; tests pass a recorder, and
operator commands pass `uncounted`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from aws_lambda_powertools.metrics import MetricUnit, single_metric

# The handlers' Metrics objects carry only the ColdStart metric; decision counts go out
# through `count`, so an invocation with nothing else to flush is expected, not a mistake.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

CountMetric = Callable[[str, int, str, str], None]  # (name, value, category, cloud)


def count(name: str, value: int, category: str, cloud: str) -> None:
    with single_metric(name=name, unit=MetricUnit.Count, value=value) as metric:
        metric.add_dimension(name="category", value=category)
        metric.add_dimension(name="cloud", value=cloud)


def uncounted(name: str, value: int, category: str, cloud: str) -> None:
    """No metrics: an operator's command counts nothing on the functions' dashboards."""
