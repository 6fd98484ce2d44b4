"""The size, fault rates and seed of one load run; bench/reliability.py makes a flag of each field."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Config:
    messages: int = 10_000
    max_recipients: int = 50
    inbound: int = 2_000
    customers_per_cloud: int = 30
    fault_rate: float = 0.10  # per HTTP attempt: throttles, server errors, timeouts (botocore retries them)
    unprocessed_rate: float = 0.10  # per DynamoDB batch call: everything unprocessed
    exhausted_rate: float = 0.01  # per AWS call: the error after botocore's retries are used up
    crash_rate: float = 0.01  # per crash point (before each send, quarantine and finish; after each mark)
    unsafe_crash_rate: float = 0.0  # crashes between SES accepting a send and its progress marker (the known at-least-once window)
    concurrent_rate: float = 0.05  # share of batches handed to two environments at once
    workers: int = 4
    batch_size: int = 10
    timeout_seconds: float = 20.0  # the function's timeout: powertools' in-progress records expire after it (template: 60 s)
    visibility_seconds: int = 25  # the queue's visibility timeout, longer than the function's as template.yaml has it (360 s)
    seed: int = 7
