"""X-Ray tracing of a function's handler, when the stack turns it on (template parameter `Tracing`).

powertools' Tracer imports the X-Ray SDK, whose recorder builds botocore clients as it is
imported: about a third of a handler's cold start (`make bench-stack`). In exchange a trace
shows each invocation's AWS calls (DynamoDB, S3, SES) with their latency and errors in the
X-Ray service map. With `Tracing=Disabled` the template sets POWERTOOLS_TRACE_DISABLED, and
the handler is returned as it is: the SDK is never imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

Handler = TypeVar("Handler", bound=Callable[..., object])


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() not in ("1", "true")


def traced(handler: Handler) -> Handler:
    """The handler under powertools' Tracer (its cold start and response captured), or as it is when tracing is off."""
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer  # noqa: PLC0415 - the X-Ray SDK only when tracing is on

    return Tracer().capture_lambda_handler(handler)
