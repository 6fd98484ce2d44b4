"""Running a function of template.yaml in this process, as the Lambda runtime would run it.

Where Docker exists, `sam local invoke` does this in a container; where it does
not, `mailfilter invoke` and `mailfilter demo` import the same handler with the
same environment and call it with a Lambda context.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from mailfilter.aws import clients
from mailfilter_cli.sam_template import LOCAL_ACCOUNT, LOCAL_REGION, FunctionSpec

# Locally there is no X-Ray daemon to send traces to.
LOCAL_ENVIRONMENT = {"POWERTOOLS_TRACE_DISABLED": "true"}


@dataclass
class LambdaContext:
    """The attributes of the runtime's context object that powertools and the handlers read."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_ms: int = 30_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, restoring what was there before."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    clients.reset()  # clients read endpoints and region from the environment when made
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        clients.reset()


class LocalFunction:
    """One function's handler, imported once with its environment and invoked like a warm Lambda."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        # An empty declared value means "unset" (as boto3 and the settings read it), so it must
        # not hide what the shell sets, such as AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local.
        declared = {name: value for name, value in spec.environment.items() if value != ""}
        self.environment = {**declared, **LOCAL_ENVIRONMENT, "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id}
        path = spec.code_dir / f"{spec.module.replace('.', '/')}.py"
        if not path.is_file():
            raise FileNotFoundError(f"{spec.logical_id}: no handler module at {path}")
        name = f"_local_{spec.logical_id}_{spec.module}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        self.module: ModuleType = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = self.module
        with environment(self.environment):
            module_spec.loader.exec_module(self.module)
        self.handler = getattr(self.module, spec.handler)

    def invoke(self, event: Any) -> Any:
        with environment(self.environment):
            return self.handler(event, LambdaContext(function_name=self.spec.logical_id))
