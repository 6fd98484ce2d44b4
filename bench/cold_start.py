"""Cold-start import cost of each handler module against a bare handler, measured in one run.

Usage: .venv/bin/python bench/cold_start.py [--runs 9]
For every functions/<name>/app.py that exists, `python -X importtime -c "import app; app.build()"`
runs in a fresh interpreter (`build()`, where the handler has one, is what its first invocation
runs before any event: `mailfilter.wiring` imports a use case and its adapters then) with the environment the template gives the function
(placeholder values); the figure is the summed cumulative time of the top-level
imports. The baseline is a handler that imports only boto3 and powertools' Logger.
Each handler is measured as deployed by default (Tracing=Active: powertools' Tracer and the
X-Ray SDK) and with Tracing=Disabled (the SDK is not imported: mailfilter.tracing).
Runs are interleaved so machine load falls on all alike; the medians and their
ratio are printed. Target: each handler at most 1.5x the baseline without X-Ray.

Bytecode caches are warm for both sides, as in a venv; in Lambda the layer's
modules are compiled on each cold start, because /opt is read-only.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.5
BASELINE = """import boto3
from aws_lambda_powertools import Logger

logger = Logger()


def lambda_handler(event, context):
    return {}
"""
# What template.yaml's Globals set, with placeholder values: handlers parse settings at import.
ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_SERVICE_NAME": "csp-mail-filter",
    "POWERTOOLS_METRICS_NAMESPACE": "CspMailFilter",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "DIRECTORY_TABLE": "bench-directory",
    "DECISIONS_TABLE": "bench-decisions",
    "IDEMPOTENCY_TABLE": "bench-idempotency",
    "MAIL_BUCKET": "bench-mail",
    "INBOUND_PREFIX": "inbound/",
    "QUARANTINE_PREFIX": "quarantine/",
    "MAILFILTER_MODE": "enforce",
    "DEFAULT_CLOUD": "commercial",
    "FILTER_FROM_ADDRESS": "mail-filter@vendor.example",
    "DECISION_RETENTION_DAYS": "90",
    "VENDOR_CONFIGURATION_SET": "bench-vendor",
    "OUTBOUND_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-outbound",
}
STARTUP = "import app\nif hasattr(app, 'build'):\n    app.build()"
LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")


def import_micros(directory: Path, *, traced: bool = True) -> int:
    """Summed cumulative microseconds of the top-level imports of `import app; app.build()` in a fresh interpreter."""
    env = {**os.environ, **ENVIRONMENT, "PYTHONPATH": str(directory), "POWERTOOLS_TRACE_DISABLED": "false" if traced else "true"}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", STARTUP], cwd=directory, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"importing {directory}/app.py failed:\n{result.stderr[-2000:]}")
    total = 0
    for line in result.stderr.splitlines():
        match = LINE.match(line)
        if match and match.group(3) == "":
            total += int(match.group(2))
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    handlers = {p.parent.name: p.parent for p in sorted((ROOT / "functions").glob("*/app.py"))}
    if not handlers:
        print("no functions/<name>/app.py yet", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as bare:
        Path(bare, "app.py").write_text(BASELINE)
        # Each handler as deployed by default (Tracing=Active) and with Tracing=Disabled.
        subjects = {"bare (boto3 + Logger)": (Path(bare), False)}
        for name, directory in handlers.items():
            subjects[name] = (directory, True)
            subjects[f"{name}, no X-Ray"] = (directory, False)
        samples: dict[str, list[int]] = {name: [] for name in subjects}
        for _ in range(args.runs):
            for name, (directory, traced) in subjects.items():
                samples[name].append(import_micros(directory, traced=traced))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    baseline = medians["bare (boto3 + Logger)"]
    print(f"python {sys.version.split()[0]}, {args.runs} runs each, interleaved; import time in ms (median, min-max)\n")
    print(f"{'handler':<34} {'median':>8} {'range':>15} {'ratio':>6}")
    worst = 0.0
    for name, values in samples.items():
        ratio = medians[name] / baseline
        if name.endswith("no X-Ray"):
            worst = max(worst, ratio)
        spread = f"{min(values) / 1000:.0f}-{max(values) / 1000:.0f}"
        print(f"{name:<34} {medians[name] / 1000:>8.1f} {spread:>15} {ratio:>6.2f}")
    verdict = "met" if worst <= TARGET_RATIO else "NOT met"
    print(f"\nworst ratio without X-Ray {worst:.2f}; target <= {TARGET_RATIO}: {verdict} (with X-Ray: its cost, shown above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
