"""The simulated Lambda runtime: execution environments, contexts that run down, and the gateway's crash points.

Each execution environment is its own import of a function's app.py, as Lambda's would be. The
gateway's mailer, quarantine and ledger are wrapped by `faults.Crashing` (the runtime dying
between side effects, or stopping the invocation at its timeout) and the mailer and ledger by
`Traced`, whose record explains a duplicate send when the checks find one.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from mailfilter_testkit.faults import Crashing, Deadline
from mailfilter_testkit.load_run.config import Config
from mailfilter_testkit.load_run.stack import ACCOUNT, REGION
from mailfilter_testkit.paths import FUNCTIONS

TraceEntry = tuple[float, int, str, str, str]  # (time, environment, message id, call, outcome)


def load_module(path: Path) -> ModuleType:
    """A fresh import of a handler file: one per simulated execution environment."""
    name = f"_reliability_{path.parent.name}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def gateway_environment(
    index: int, config: Config, deadline: Deadline, trace: list[TraceEntry], count_failure: Callable[[str], None]
) -> tuple[ModuleType, list[Crashing]]:
    """A fresh execution environment of the outbound gateway, and the crash points around its collaborators.

    `count_failure` hears the cause of every record the handler fails back to the queue.
    """
    module = load_module(FUNCTIONS / "outbound_gateway" / "app.py")
    gateway = module.build()
    gateway.mailer = Traced(gateway.mailer, trace, index)
    gateway.ledger = Traced(gateway.ledger, trace, index)
    rate, unsafe, seed = config.crash_rate, config.unsafe_crash_rate, config.seed * 1000 + index
    wrapped = [
        ("mailer", Crashing(gateway.mailer, crash_rate=rate, seed=seed, deadline=deadline, before=("send",))),
        ("quarantine", Crashing(gateway.quarantine, crash_rate=rate, seed=seed + 1, deadline=deadline, before=("put",))),
        # the finish writes the records and "done" together; a mark records a send between two sends
        ("ledger", Crashing(gateway.ledger, crash_rate=rate, seed=seed + 3, deadline=deadline, before=("finish",), after=("mark",))),
    ]
    if unsafe:
        wrapped[0] = ("mailer", Crashing(wrapped[0][1], crash_rate=unsafe, seed=seed + 4, deadline=deadline, after=("send",)))
    for name, wrapper in wrapped:
        setattr(gateway, name, wrapper)
    handle = gateway.handle

    def counted(body: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return handle(body, **kwargs)
        except Exception as error:
            cause = getattr(error, "code", None) or type(error.__cause__ or error).__name__
            count_failure(f"{type(error).__name__}: {cause}")
            raise

    gateway.handle = counted
    return module, [wrapper for _, wrapper in wrapped]


class Traced:
    """Records each call of a collaborator (time, environment, call, outcome), to explain a duplicate when one is found."""

    def __init__(self, inner: Any, trace: list[TraceEntry], environment: int) -> None:
        self._inner, self._trace, self._environment = inner, trace, environment
        self.label = type(inner).__name__

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            what = f"{self.label}.{name} {str(args[0])[:40] if args else ''} {kwargs.get('recipients', '')}"[:160]
            token = re.search(r"l(?:out|in)-\d{6}", str(args[0])[:4000] if args else "")
            key = token.group(0) if token else "?"
            try:
                result = target(*args, **kwargs)
            except BaseException as error:
                self._trace.append((time.monotonic(), self._environment, key, what, f"{type(error).__name__}: {error}"[:120]))
                raise
            self._trace.append((time.monotonic(), self._environment, key, what, "ok"))
            return result

        return call


class Context:
    """A Lambda context whose remaining time runs down from the invocation's start, as the real one does."""

    def __init__(self, function_name: str, timeout: float) -> None:
        self.function_name = function_name
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))
