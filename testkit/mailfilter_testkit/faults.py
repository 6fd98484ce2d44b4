"""Seeded fault injection at the AWS client level, with botocore's event hooks, and simulated crashes.

`FaultInjector.attach(client)` registers two handlers first in the client's event chain:

- `before-call.<service>`: with probability `rate` per API call, the call fails as if botocore
  had already given up retrying (a `ClientError` with a throttling or server error code), or,
  for BatchGetItem and BatchWriteItem, "succeeds" with all of its keys or items handed back
  as UnprocessedKeys / UnprocessedItems and nothing done;
- `before-send.<service>`: a timeout raised before the request leaves the process
  (`ReadTimeoutError` or `ConnectTimeoutError`), which botocore's standard retry mode retries.

Both run before moto's own `before-send` stub, so a faulted request never reaches the service.
Nothing is faulted while `paused` is set (checking results after a run).

`Crashing` wraps a collaborator of a handler (mailer, quarantine, decisions log, progress) and
raises `LambdaCrash`, a BaseException that no `except Exception` catches, at chosen points
between side effects, as a Lambda runtime dying mid-invocation would: the handler's batch
processor and the idempotency code never see it, so nothing is cleaned up. It also stops
an invocation past its deadline (`LambdaTimeout`), as Lambda does at the function's timeout.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.client import BaseClient
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

ERROR_CODES = {
    "dynamodb": ("ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError"),
    "s3": ("SlowDown", "ServiceUnavailable", "InternalError"),
    "sesv2": ("Throttling", "TooManyRequestsException", "ServiceUnavailable"),
}
UNPROCESSED = {"BatchGetItem": "UnprocessedKeys", "BatchWriteItem": "UnprocessedItems"}


class LambdaCrash(BaseException):
    """The execution environment died here: no except-Exception handler runs, nothing is cleaned up."""


class LambdaTimeout(LambdaCrash):
    """The invocation ran past its deadline and Lambda stopped it."""


class Deadline(threading.local):
    """The current invocation's deadline, per thread (each thread is one execution environment)."""

    at: float = float("inf")


class FaultInjector:
    """Seeded faults on the AWS clients; counts what it injected, by kind.

    - `rate`, per HTTP attempt: a throttling or server-error response, or a timeout, before the
      request leaves the process. botocore's standard retry mode (mailfilter.aws.clients) retries these.
    - `unprocessed_rate`, per BatchGetItem/BatchWriteItem call: every key or item handed back unprocessed.
    - `exhausted_rate`, per API call: the error botocore raises once its retries are used up, for
      the caller's own failure handling.
    """

    def __init__(
        self,
        rate: float,
        seed: int,
        *,
        unprocessed_rate: float | None = None,
        exhausted_rate: float = 0.0,
        services: tuple[str, ...] = ("dynamodb", "s3", "sesv2"),
        deadline: Deadline | None = None,
    ) -> None:
        for name, value in (("rate", rate), ("unprocessed_rate", unprocessed_rate or 0), ("exhausted_rate", exhausted_rate)):
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), not {value}")
        self.rate = rate
        self.unprocessed_rate = rate if unprocessed_rate is None else unprocessed_rate
        self.exhausted_rate = exhausted_rate
        self.services = services
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.paused = False
        self.deadline = deadline

    def _stop_if_late(self, where: str) -> None:
        """Lambda stops an invocation at its timeout: no AWS call starts after the deadline."""
        if self.deadline is not None and time.monotonic() > self.deadline.at:
            self._count("invocation stopped at its timeout")
            raise LambdaTimeout(where)

    def attach(self, client: BaseClient) -> BaseClient:
        service = client.meta.service_model.service_id.hyphenize()
        if service in self.services:
            client.meta.events.register_first(f"before-call.{service}", self._before_call, unique_id=f"faults-call-{id(self)}")
            client.meta.events.register_first(
                f"before-send.{service}", lambda request, **_: self._before_send(service, request), unique_id=f"faults-send-{id(self)}"
            )
        return client

    @contextmanager
    def pause(self) -> Iterator[None]:
        self.paused, was = True, self.paused
        try:
            yield
        finally:
            self.paused = was

    def _draw(self, rate: float, choices: int) -> int | None:
        """None (no fault) or which of `choices` kinds to inject."""
        with self.lock:
            if self.paused or self.random.random() >= rate:
                return None
            return self.random.randrange(choices)

    def _before_call(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        service = model.service_model.service_id.hyphenize()
        operation = model.name
        self._stop_if_late(f"{service} {operation}")
        with self.lock:
            self.calls[service] += 1
        if operation in UNPROCESSED and self._draw(self.unprocessed_rate, 1) is not None:
            return self._unprocessed(service, operation, params)
        kind = self._draw(self.exhausted_rate, len(ERROR_CODES[service]))
        if kind is None:
            return None
        code = ERROR_CODES[service][kind]
        self._count(f"{service} {code} (after retries)")
        status = 503 if code in ("SlowDown", "ServiceUnavailable") else 500 if "Internal" in code else 400
        raise ClientError({"Error": {"Code": code, "Message": "injected fault"}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)

    def _unprocessed(self, service: str, operation: str, params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """A batch call that did none of its work: everything comes back unprocessed."""
        body = json.loads(params["body"])
        key = UNPROCESSED[operation]
        self._count(f"{service} {key}")
        response: dict[str, Any] = {key: body["RequestItems"], "ResponseMetadata": {"HTTPStatusCode": 200}}
        if operation == "BatchGetItem":
            response["Responses"] = {table: [] for table in body["RequestItems"]}
        return _Http(200), response

    def _before_send(self, service: str, request: Any) -> AWSResponse | None:
        original = request.__dict__.pop("_faults_url", None)
        if original is not None:  # botocore retries with the same request object
            request.url = original
        self._stop_if_late(service)
        kind = self._draw(self.rate, 3)
        if kind is None:
            return None
        if kind == 0:
            error = ReadTimeoutError if self.random.random() < 0.5 else ConnectTimeoutError
            self._count(f"{service} {error.__name__}")
            raise error(endpoint_url=request.url)
        code = ERROR_CODES[service][0 if kind == 1 else 2]  # a throttle, or a server error
        self._count(f"{service} {code}")
        response = _error_response(service, code, request.url)
        # Every before-send handler runs; moto's stub, after this one, must not act on a request that failed.
        request._faults_url, request.url = request.url, "http://fault-injected.invalid/"
        return response

    def _count(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] += 1

    def by_kind(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))


def _error_response(service: str, code: str, url: str) -> AWSResponse:
    """The HTTP response each service's protocol gives for `code`, for botocore to parse and retry."""
    status = 503 if code in ("SlowDown", "ServiceUnavailable") else 500 if "Internal" in code else 429 if service == "sesv2" else 400
    if service == "dynamodb":
        headers, body = (
            {"x-amzn-ErrorType": code},
            json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected"}),
        )
    elif service == "s3":
        headers, body = {}, f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>injected</Message></Error>"
    else:
        headers, body = {"x-amzn-ErrorType": code}, json.dumps({"message": "injected"})
    return AWSResponse(url, status, headers, _Raw(body.encode()))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


class _Http:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}


class Crashing:
    """A collaborator that may die around its calls: `before` raises ahead of the side effect, `after` once it is done."""

    def __init__(
        self, inner: Any, *, crash_rate: float, seed: int, deadline: Deadline, before: tuple[str, ...] = (), after: tuple[str, ...] = ()
    ) -> None:
        self._inner = inner
        self._rate = crash_rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._deadline = deadline
        self._before = before
        self._after = after
        self.crashes: Counter[str] = Counter()
        self.label = getattr(inner, "label", type(inner).__name__)

    def _maybe(self, point: str) -> None:
        if time.monotonic() > self._deadline.at:
            self.crashes[f"timeout {point}"] += 1
            raise LambdaTimeout(point)
        with self._lock:
            fire = self._random.random() < self._rate
        if fire:
            self.crashes[point] += 1
            raise LambdaCrash(point)

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if (name not in self._before and name not in self._after) or not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if name in self._before:
                self._maybe(f"before {self.label}.{name}")
            result = target(*args, **kwargs)
            if name in self._after:
                self._maybe(f"after {self.label}.{name}")
            return result

        return call
