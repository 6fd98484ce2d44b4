"""One cached boto3 client per service, with explicit retries and timeouts.

Endpoints are never configured here: boto3 reads AWS_ENDPOINT_URL and
AWS_ENDPOINT_URL_<SERVICE> (for example AWS_ENDPOINT_URL_DYNAMODB for
DynamoDB Local) by itself. Clients are created once per execution environment
and reused across invocations, which keeps their connection pools warm.
"""

from __future__ import annotations

import threading

import boto3
from botocore.client import BaseClient
from botocore.config import Config

# "standard" retries throttling and transient errors with exponential backoff
# and jitter. Three attempts and short timeouts keep a stuck call well inside
# a function's time limit, so the caller still has time to defer safely.
CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
    max_pool_connections=32,  # the CLI's import writes from several threads
)


class _Clients:
    """The clients of this process, and the session that made them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.session: boto3.session.Session | None = None
        self.clients: dict[str, BaseClient] = {}


_registry = _Clients()


def client(service: str) -> BaseClient:
    """The shared client for `service` ("dynamodb", "s3", "sesv2", ...); thread-safe."""
    existing = _registry.clients.get(service)
    if existing is not None:
        return existing
    # boto3 sessions are not thread-safe while they create clients.
    with _registry.lock:
        if service not in _registry.clients:
            if _registry.session is None:
                _registry.session = boto3.session.Session()
            _registry.clients[service] = _registry.session.client(service, config=CONFIG)
        return _registry.clients[service]


def reset() -> None:
    """Forget every client, so the next ones read the environment afresh (tests, CLI options)."""
    with _registry.lock:
        _registry.clients.clear()
        _registry.session = None
