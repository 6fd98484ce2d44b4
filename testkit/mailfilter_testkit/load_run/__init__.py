"""Faults under load: generated directory and mail through the real handlers, checked against an independent oracle.

Used by `bench/reliability.py` (the full run, `make reliability`) and
`tests/reliability/test_reliability.py` (a small run inside `make test`). One run (`run.run`):

1. generates a directory (`directory`: customers of every segment in all three clouds, the
   same domains reused across clouds with different relationships, partners with and without
   contacts) and imports it into DynamoDB Local with the operator's own import (`stack`);
2. puts N generated send requests (`workload`: 1 to 50 recipients, every category, product and
   cloud) on an SQS queue (moto) whose redrive policy is the template's, and runs the outbound
   gateway's real `lambda_handler` in W simulated execution environments (`lambda_runtime`: each
   its own import of functions/outbound_gateway/app.py), fed batches of 10 as Lambda's event
   source mapping does (`event_sources`): successes deleted, reported failures and crashed
   invocations back after the visibility timeout, dead-lettered after maxReceiveCount receives;
   some batches are handed to two environments at once;
3. sends M generated SES receipt events through the inbound filter's real `lambda_handler`,
   some twice at once and some again afterwards (`event_sources`);
4. with faults paused, reads what moto's SES sent, what S3 quarantined, what the decisions
   table holds and what the dead-letter queue kept, and compares each message (`checks`) with
   the oracle (`oracle`), which applies docs/policy.md's table to the generated directory
   without using mailfilter.policy. The figures and problems go into a `report.Report`.

AWS faults come from `mailfilter_testkit.faults.FaultInjector` on the shared clients; crashes
and timeouts from `faults.Crashing` around the gateway's collaborators.
"""

from mailfilter_testkit.load_run.config import Config
from mailfilter_testkit.load_run.report import Report
from mailfilter_testkit.load_run.run import run

__all__ = ["Config", "Report", "run"]
