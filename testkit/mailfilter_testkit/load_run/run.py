"""One load run from start to finish: generate, set up, deliver under faults, check."""

from __future__ import annotations

import os
import time
from contextlib import redirect_stdout
from typing import Any

from mailfilter_testkit.load_run.checks import Checker
from mailfilter_testkit.load_run.config import Config
from mailfilter_testkit.load_run.directory import CLOUDS, generate_directory
from mailfilter_testkit.load_run.event_sources import SesInvocations, SqsEventSource
from mailfilter_testkit.load_run.lambda_runtime import TraceEntry
from mailfilter_testkit.load_run.report import Report
from mailfilter_testkit.load_run.stack import LoadStack
from mailfilter_testkit.load_run.workload import generate_inbound, generate_outbound


def run(config: Config, endpoint: str, *, progress: Any = None) -> Report:
    """The whole run; `endpoint` is a running DynamoDB Local."""
    started = time.monotonic()
    records, customers = generate_directory(config.customers_per_cloud)
    outbound = generate_outbound(config.messages, config.seed, customers, config.customers_per_cloud, config.max_recipients)
    inbound = generate_inbound(config.inbound, config.seed, customers, config.customers_per_cloud)
    report = Report(config)
    trace: list[TraceEntry] = []
    stack = LoadStack(config, endpoint)
    # single_metric prints EMF lines to stdout whatever POWERTOOLS_METRICS_DISABLED says.
    with stack.running(), open(os.devnull, "w") as null, redirect_stdout(null):
        stack.import_directory(records)
        if progress:
            progress(f"directory: {len(customers)} customers in {len(CLOUDS)} clouds; {len(outbound)} send requests")
        gateway = SqsEventSource(stack, report, trace)
        gateway.run(outbound, progress)
        if progress:
            progress(f"outbound done in {report.seconds['outbound']:.0f} s; {len(inbound)} inbound events")
        responses = SesInvocations(stack, report).run(inbound)
        Checker(report, trace).check(stack, outbound, inbound, responses)
        report.faults = stack.injector.by_kind()
        report.aws_calls = dict(stack.injector.calls)
        for wrapper in gateway.crashing:
            report.crashes.update(wrapper.crashes)
    report.seconds["total"] = time.monotonic() - started
    return report
