"""The makefile builds that `sam build` runs, run here directly (no SAM, no Docker).

The layer build fetches idna as a wheel for python3.13 on arm64 from the
package index, as `sam build` does.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mailfilter_testkit.paths import ROOT

LAYER_LIMIT_BYTES = 1024 * 1024


def make(makefile: Path, target: str, cwd: Path, artifacts: Path) -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "-f", str(makefile), target, f"ARTIFACTS_DIR={artifacts}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    artifacts = tmp_path_factory.mktemp("layer")
    make(ROOT / "layers/mailfilter/Makefile", "build-MailFilterLayer", ROOT / "layers/mailfilter", artifacts)
    return artifacts


def test_layer_ships_the_mailfilter_package_with_its_policy_and_idna(layer: Path):
    python = layer / "python"
    assert (python / "mailfilter" / "__init__.py").is_file()
    assert (python / "mailfilter" / "policy" / "default.toml").is_file()
    assert (python / "idna" / "__init__.py").is_file()
    assert not list(python.rglob("__pycache__"))
    assert not (python / "bin").exists()


def test_layer_leaves_boto3_powertools_and_pydantic_to_the_runtime_and_aws_layer(layer: Path):
    shipped = {p.name.split("-")[0].lower() for p in (layer / "python").iterdir()}
    assert shipped.isdisjoint({"boto3", "botocore", "aws_lambda_powertools", "pydantic", "pydantic_core"})


def test_layer_stays_under_one_megabyte(layer: Path):
    size = sum(p.stat().st_size for p in layer.rglob("*") if p.is_file())
    assert size < LAYER_LIMIT_BYTES, f"layer is {size} bytes"


@pytest.mark.parametrize("function", ["InboundFilterFunction", "OutboundGatewayFunction", "OutboundAuditFunction"])
def test_function_build_copies_the_handler_without_tests_or_caches(function: str, tmp_path: Path):
    source = tmp_path / "source"
    (source / "tests").mkdir(parents=True)
    (source / "__pycache__").mkdir()
    (source / "app.py").write_text("def lambda_handler(event, context):\n    return event\n")
    (source / "tests" / "test_app.py").write_text("")
    (source / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"")
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    make(ROOT / "functions/Makefile", f"build-{function}", source, artifacts)
    assert sorted(p.name for p in artifacts.iterdir()) == ["app.py"]
