"""What one load run found: its figures (the table docs/reliability.md shows) and every problem, one line each."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from mailfilter_testkit.load_run.config import Config


@dataclass
class Report:
    config: Config
    messages: int = 0
    recipients: int = 0
    inbound: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    aws_calls: dict[str, int] = field(default_factory=dict)
    crashes: Counter[str] = field(default_factory=Counter)
    record_failures: Counter[str] = field(default_factory=Counter)
    invocations: int = 0
    concurrent_invocations: int = 0
    receives: int = 0
    violations: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    duplicate_sends: list[str] = field(default_factory=list)
    unsafe_window_duplicates: list[str] = field(default_factory=list)
    dead_lettered: int = 0
    inbound_deferred: int = 0
    inbound_redelivered: int = 0
    unhandled_exceptions: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def rows(self) -> list[tuple[str, str]]:
        c = self.config
        rows = [
            ("outbound messages", f"{self.messages:,}"),
            ("outbound recipients", f"{self.recipients:,}"),
            ("inbound events", f"{self.inbound:,}"),
            (
                "faults: per HTTP attempt / per batch call / after retries",
                f"{c.fault_rate:.0%} / {c.unprocessed_rate:.0%} / {c.exhausted_rate:.0%}",
            ),
            ("seed", str(c.seed)),
            ("AWS calls (dynamodb/s3/sesv2)", "/".join(f"{self.aws_calls.get(s, 0):,}" for s in ("dynamodb", "s3", "sesv2"))),
            ("faults injected", f"{sum(self.faults.values()):,}"),
            *((f"  {kind}", f"{n:,}") for kind, n in self.faults.items()),
            ("crashes and timeouts", f"{sum(self.crashes.values()):,}"),
            *((f"  {kind}", f"{n:,}") for kind, n in sorted(self.crashes.items())),
            ("records failed back to the queue, by cause", f"{sum(self.record_failures.values()):,}"),
            *((f"  {kind}", f"{n:,}") for kind, n in self.record_failures.most_common()),
            ("gateway invocations (batches of 10)", f"{self.invocations:,}"),
            ("  of them a second copy run at once", f"{self.concurrent_invocations:,}"),
            ("SQS receives of send requests", f"{self.receives:,}"),
            ("dead-lettered after 5 receives", f"{self.dead_lettered:,}"),
            ("inbound events deferred (recorded, kept)", f"{self.inbound_deferred:,}"),
            ("inbound events delivered twice by SES", f"{self.inbound_redelivered:,}"),
            ("violations", f"{len(self.violations):,}"),
            ("lost", f"{len(self.lost):,}"),
            ("duplicate sends", f"{len(self.duplicate_sends):,}"),
            ("unhandled exceptions", f"{len(self.unhandled_exceptions):,}"),
        ]
        rows.append(
            ("  and duplicates from an invocation stopped between SES accepting and the marker", f"{len(self.unsafe_window_duplicates):,}")
        )
        rows += [(f"time: {phase}", f"{seconds:.1f} s") for phase, seconds in self.seconds.items()]
        return rows

    def table(self) -> str:
        width = max(len(name) for name, _ in self.rows())
        lines = [f"| {'what':<{width}} | figure |", f"|{'-' * (width + 2)}|--------|"]
        lines += [f"| {name:<{width}} | {value} |" for name, value in self.rows()]
        return "\n".join(lines)

    def problems(self) -> list[str]:
        return self.violations + self.lost + self.duplicate_sends + self.unhandled_exceptions
