"""The outbound audit end to end: SES "Email Sent" events in, violations recorded for mail that bypassed the gateway."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from outbound_support import Harness, LambdaContext, load_function, sample_event


@pytest.fixture
def audit(outbound: Harness) -> Any:
    return load_function("outbound_audit")


def test_mail_that_bypassed_the_gateway_is_recorded_as_a_violation_naming_the_rule(outbound: Harness, audit: Any) -> None:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(audit.logger.registered_formatter)
    audit.logger.addHandler(handler)
    event = sample_event("email-sent-bypass.json")

    result = audit.lambda_handler(event, LambdaContext(function_name="outbound-audit"))

    assert result["violations"] == 1
    [record] = outbound.records(event["detail"]["mail"]["messageId"])
    assert (record["kind"], record["recipient"], record["rule"]) == (
        "violation",
        "marketing@tailspintoys.com",
        "product-mail-for-csp-customer",
    )
    [line] = [json.loads(x) for x in buffer.getvalue().splitlines() if "policy violation" in x]
    assert line["rule"] == "product-mail-for-csp-customer"
    assert line["recipient"] == "m***@tailspintoys.com"


def test_violations_are_counted_by_category_and_cloud(outbound: Harness, audit: Any, capsys: pytest.CaptureFixture[str]) -> None:
    audit.lambda_handler(sample_event("email-sent-bypass.json"), LambdaContext(function_name="outbound-audit"))

    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"PolicyViolations"' in line]
    assert [(m["category"], m["cloud"], m["PolicyViolations"]) for m in metrics] == [("product", "commercial", [1.0])]


def test_mail_with_the_gateway_tag_is_ignored(outbound: Harness, audit: Any) -> None:
    event = sample_event("email-sent-through-gateway.json")

    result = audit.lambda_handler(event, LambdaContext(function_name="outbound-audit"))

    assert result["status"] == "passed-gateway"
    assert outbound.records(event["detail"]["mail"]["messageId"]) == []


def test_bypass_that_the_rules_allow_records_nothing(outbound: Harness, audit: Any) -> None:
    event = sample_event("email-sent-bypass.json")
    event["detail"]["mail"]["destination"] = ["cto@woodgrovebank.com"]

    result = audit.lambda_handler(event, LambdaContext(function_name="outbound-audit"))

    assert result["violations"] == 0
    assert outbound.records(event["detail"]["mail"]["messageId"]) == []
