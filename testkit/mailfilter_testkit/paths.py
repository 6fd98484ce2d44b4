"""Where the checkout's files are: the testkit is installed editable, so it finds them beside itself."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # testkit/mailfilter_testkit/paths.py -> the checkout
EVENTS = ROOT / "events"  # the sample events and events/directory.jsonl
FUNCTIONS = ROOT / "functions"  # one folder per Lambda function, each with its app.py
