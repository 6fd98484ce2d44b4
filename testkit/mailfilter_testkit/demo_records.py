"""The demo's own records, kept for tests: `mailfilter demo`'s services and resources, every sample event through the real handlers.

`demo_stack()` does what `mailfilter demo` does (local_services.services, local_stack.create_resources,
demo_cmd.run_event) but keeps the services up for the block, so tests can trace,
replay and report what the functions recorded. Events for functions the demo does
not run are left out.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mailfilter_cli.demo_cmd import Outcome, run_event
from mailfilter_cli.local_events import AUDIT, GATEWAY, INBOUND, function_for
from mailfilter_cli.local_lambda import LocalFunction, environment
from mailfilter_cli.local_services import services
from mailfilter_cli.local_stack import create_resources
from mailfilter_cli.sam_template import function_spec
from mailfilter_testkit.paths import EVENTS

FUNCTIONS = (INBOUND, GATEWAY, AUDIT)


@dataclass
class DemoStack:
    variables: dict[str, str]  # DECISIONS_TABLE, MAIL_BUCKET, ... as `mailfilter local up` writes them
    environment: dict[str, str]  # endpoints, region, dummy credentials
    outcomes: list[Outcome]

    def env(self) -> dict[str, str]:
        """Everything a `mailfilter` command needs to find the demo's resources."""
        return {**self.environment, **self.variables}


def sample_events() -> list[Path]:
    import json  # noqa: PLC0415

    return [p for p in sorted(EVENTS.glob("*.json")) if function_for(json.loads(p.read_text(encoding="utf-8"))) in FUNCTIONS]


@contextlib.contextmanager
def demo_stack(dynamodb: str = "local") -> Iterator[DemoStack]:
    with services(dynamodb) as running, environment(running.environment()):
        with contextlib.redirect_stdout(io.StringIO()):  # the functions' structured logs
            made = create_resources(EVENTS / "directory.jsonl", EVENTS)
            functions = {name: LocalFunction(function_spec(name, {"Parameters": made.variables})) for name in FUNCTIONS}
            outcomes = [outcome for path in sample_events() if (outcome := run_event(path, functions))]
        yield DemoStack(dict(made.variables), running.environment(), outcomes)
