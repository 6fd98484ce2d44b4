"""Fixtures of the integration tests: the outbound functions on DynamoDB Local, moto's S3 and SES."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from mailfilter.aws import clients
from mailfilter_testkit.aws_resources import create_tables_from_template, delete_tables
from mailfilter_testkit.outbound_support import BUCKET, Harness, import_directory


@pytest.fixture(scope="module")
def outbound_directory(dynamodb_local: str) -> Iterator[str]:
    """A directory table holding events/directory.jsonl, shared by one test module."""
    names = create_tables_from_template(["DirectoryTable"])
    import_directory(names["DirectoryTable"])
    yield names["DirectoryTable"]
    delete_tables(names.values())


@pytest.fixture
def outbound(outbound_directory: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """Fresh decisions and idempotency tables, and moto's S3 and SES (the mail bucket, the vendor's verified domain)."""
    names = create_tables_from_template(["DecisionsTable", "IdempotencyTable"])
    with mock_aws():
        clients.reset()
        clients.client("s3").create_bucket(Bucket=BUCKET)
        clients.client("sesv2").create_email_identity(EmailIdentity="vendor.example")
        harness = Harness({"DirectoryTable": outbound_directory, **names})
        for name, value in harness.environment().items():
            monkeypatch.setenv(name, value)
        yield harness
    clients.reset()
    delete_tables(names.values())
