"""Decision counts as CloudWatch metrics, one EMF record per (name, category, cloud[, mode]).

Each count goes out on its own (powertools' `single_metric`) so every decision
keeps its own dimensions and the dimension sets stay small and fixed; the
namespace comes from POWERTOOLS_METRICS_NAMESPACE, as for powertools' Metrics.
Cores receive a `CountMetric` and call it; tests pass a recorder, and
operator commands pass `uncounted`.

`count_decisions` is the one decision counter of every function: `Allowed`, `Rerouted`
and `Blocked` count what the policy decided (a decision's `action`), with the mode as a
dimension, `enforce` or `audit` (audit mode, or a rule on trial, where the mail was
delivered as allowed). So a would-be block is `Blocked` with `mode=audit` on the gateway
and on the inbound filter alike, and one dashboard reads one meaning.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Collection

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from mailfilter.ports import CountMetric
from mailfilter.vocabulary.model import Action, Decision, Mode, Verdict

# The handlers' Metrics objects carry only the ColdStart metric; decision counts go out
# through `count`, so an invocation with nothing else to flush is expected, not a mistake.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


DECISION_METRICS = {Action.ALLOW: "Allowed", Action.REROUTE: "Rerouted", Action.BLOCK: "Blocked"}
DEFERRED = "Deferred"


def count(name: str, value: int, category: str, cloud: str, mode: str | None = None) -> None:
    with single_metric(name=name, unit=MetricUnit.Count, value=value) as metric:
        metric.add_dimension(name="category", value=category)
        metric.add_dimension(name="cloud", value=cloud)
        if mode is not None:
            metric.add_dimension(name="mode", value=mode)


def uncounted(name: str, value: int, category: str, cloud: str, mode: str | None = None) -> None:
    """No metrics: an operator's command counts nothing on the functions' dashboards."""


def count_decisions(
    count: CountMetric, verdict: Verdict, *, cloud_of: Callable[[Decision], str] | None = None, deferred: Collection[str] = ()
) -> None:
    """Count every decision of a verdict by what was decided, its category, cloud and mode (see above).

    `cloud_of` names a decision's cloud where it is not the message's (inbound desks); a recipient in
    `deferred` counts as `Deferred`: its decision could not be carried out yet.
    """
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for decision in verdict.decisions:
        name = DEFERRED if decision.recipient in deferred else DECISION_METRICS[decision.action]
        cloud = cloud_of(decision) if cloud_of else verdict.classification.cloud.value
        audit = verdict.mode is Mode.AUDIT or decision.effective is not decision.action
        counts[(name, decision.category.value, cloud, Mode.AUDIT.value if audit else Mode.ENFORCE.value)] += 1
    for (name, category, cloud, mode), value in counts.items():
        count(name, value, category, cloud, mode)
