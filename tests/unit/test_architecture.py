"""The house plan holds: every module of the layer imports only from its own layer or the layers below (docs/architecture.md).

The layers, lowest first, are `LAYERS` below; a use case imports no AWS adapter and no
other use case except where `SIDEWAYS` says; the pure layers import no AWS SDK. Imports
under `if TYPE_CHECKING:` are annotations only and are not counted.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "mailfilter" / "mailfilter"

# Lowest first: a module may import from its own layer and the layers before it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("vocabulary",),
    ("directory",),
    ("policy",),
    ("events",),
    ("delivery",),
    ("ports",),
    ("engine",),
    ("settings", "metrics", "tracing"),
    ("aws",),
    ("outbound", "inbound", "audit", "release", "digests", "explain"),
    ("wiring",),
)
USE_CASES = frozenset(LAYERS[-2])
# The use cases that act through another's code: a release delivers as the filter would, `explain` reads as the functions do.
SIDEWAYS = {"release": {"inbound", "outbound"}, "explain": {"outbound", "inbound", "audit"}}
PURE = frozenset({"vocabulary", "directory", "policy", "events", "delivery", "ports", "engine"})
AWS_SDK = frozenset({"boto3", "botocore"})
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def part_of(module: str) -> str:
    """`mailfilter.inbound.filter` -> "inbound"; `mailfilter.ports` -> "ports"."""
    return module.split(".")[1]


def runtime_imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, module) of every import, except those under `if TYPE_CHECKING:`."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            skipped |= {id(child) for child in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_part_of_the_layer_is_placed_in_a_layer() -> None:
    parts = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in modules()}
    assert parts - {"__init__"} == set(RANK), "docs/architecture.md and LAYERS name every folder and root module"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_downward_only(path: Path) -> None:
    here = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    wrong = []
    for line, module in runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
        top = module.split(".")[0]
        if here in PURE and top in AWS_SDK | {"aws_lambda_powertools"} and not (here == "events" and top == "aws_lambda_powertools"):
            wrong.append(f"line {line}: {module} (the pure layers do no I/O)")
        if top != "mailfilter" or module == "mailfilter":
            if here in USE_CASES and top == "boto3":
                wrong.append(f"line {line}: {module} (a use case acts through ports, wiring builds the adapters)")
            continue
        there = part_of(module)
        if there == here:
            continue
        if RANK[there] > RANK[here]:
            wrong.append(f"line {line}: {module} (layer {there} is above {here})")
        elif RANK[there] == RANK[here] and there not in SIDEWAYS.get(here, ()):
            wrong.append(f"line {line}: {module} ({here} and {there} are side by side)")
        elif here in USE_CASES and there == "aws":
            wrong.append(f"line {line}: {module} (a use case acts through ports, wiring builds the adapters)")
    assert not wrong, f"{path.relative_to(PACKAGE)} imports against the house plan:\n" + "\n".join(wrong)


def test_the_rules_catch_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: an engine module importing an adapter is reported."""
    tree = ast.parse("from mailfilter.aws.mailer import Mailer\nif TYPE_CHECKING:\n    from mailfilter.wiring import x\n")
    found = [module for _, module in runtime_imports(tree)]
    assert found == ["mailfilter.aws.mailer"]
    assert RANK[part_of(found[0])] > RANK["engine"]
