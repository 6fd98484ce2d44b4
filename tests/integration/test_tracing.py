"""X-Ray tracing is the operator's choice: off, a handler is returned as it is and the X-Ray SDK never loads."""

from __future__ import annotations

import os
import subprocess
import sys

from mailfilter_testkit.paths import ROOT


def imported_after_loading(function: str, trace_disabled: str) -> set[str]:
    """Which X-Ray modules a fresh interpreter holds after importing functions/<function>/app.py."""
    env = {
        **os.environ,
        "POWERTOOLS_TRACE_DISABLED": trace_disabled,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / function), str(ROOT / "layers" / "mailfilter")]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "csp-mail-filter",
    }
    code = "import sys, app; print(' '.join(sorted(m for m in sys.modules if m.startswith('aws_xray_sdk'))))"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return set(result.stdout.split())


def test_with_tracing_disabled_the_gateway_never_imports_the_xray_sdk() -> None:
    assert imported_after_loading("outbound_gateway", "true") == set()


def test_with_tracing_on_the_gateway_is_traced_by_powertools() -> None:
    assert "aws_xray_sdk.core" in imported_after_loading("outbound_gateway", "false")
