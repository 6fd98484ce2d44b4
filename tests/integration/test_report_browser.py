"""`mailfilter report`'s page opened in a real headless Chromium with the network off: every chart drawn, no console error.

Chromium is Debian's (`apt-get install chromium`), driven by playwright's Python package
through `executable_path` (playwright downloads no browser here). Every request that is
not for the file itself is aborted and counted, so a page that needs the network fails.
Without Chromium the test skips on a developer machine and fails where the browser is
required: MAILFILTER_REQUIRE_BROWSER=1, which `.ci/run` sets after installing it.
`MAILFILTER_UPDATE_SCREENSHOT=1` also writes docs/report-demo.png.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailfilter_cli.demo_cmd import write_report
from mailfilter_testkit.demo_records import DemoStack, demo_stack
from mailfilter_testkit.paths import ROOT

SCREENSHOT = ROOT / "docs" / "report-demo.png"
REQUIRE = os.environ.get("MAILFILTER_REQUIRE_BROWSER") == "1" or os.environ.get("MAILFILTER_REQUIRE_TOOLS") == "1"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHARTS = (
    "decisions-by-action",
    "decisions-by-rule",
    "decisions-by-cloud",
    "rerouted-by-partner",
    "audit-violations",
    "quarantine",
    "deferrals",
)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    message = "no Chromium on PATH: apt-get install chromium (Debian/Ubuntu); .ci/run installs it where it runs as root"
    if REQUIRE:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def stack(dynamodb_local: str) -> Iterator[DemoStack]:
    with demo_stack() as running:
        yield running


@pytest.fixture(scope="module")
def page_file(stack: DemoStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's report, written as `mailfilter demo --report FILE` writes it."""
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    path = tmp_path_factory.mktemp("report") / "report.html"
    write_report(path, stack.variables, datetime.now(UTC) - timedelta(hours=1))
    return path


def test_the_demo_report_is_one_self_contained_file(page_file: Path) -> None:
    text = page_file.read_text(encoding="utf-8")
    assert text.count("<section class='chart'") == len(CHARTS)
    assert "<script src=" not in text  # plotly.js is inlined, not fetched
    assert len(text) > 3_000_000  # ... and that is plotly.js itself


def test_every_chart_renders_in_headless_chromium_with_the_network_off(page_file: Path, tmp_path: Path) -> None:
    executable = chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extras: make test installs it")
    blocked: list[str] = []
    problems: list[str] = []

    def route(request_route: object) -> None:
        request = request_route.request  # type: ignore[attr-defined]
        if request.url.startswith("file://"):
            request_route.continue_()  # type: ignore[attr-defined]
        else:
            blocked.append(request.url)
            request_route.abort()  # type: ignore[attr-defined]

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", route)
            page.on(
                "console", lambda message: problems.append(f"console {message.type}: {message.text}") if message.type == "error" else None
            )
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.goto(page_file.as_uri(), wait_until="load")
            page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {len(CHARTS)}", timeout=30_000)
            drawn = page.evaluate(
                """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => ({
                    id: gd.id,
                    traces: gd.data.length,
                    drawn: gd.querySelectorAll('g.trace').length,
                    marks: gd.querySelectorAll('g.trace path.point, g.trace path.js-line, g.trace .point').length,
                }))"""
            )
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            if os.environ.get("MAILFILTER_UPDATE_SCREENSHOT") == "1":
                page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert [d["id"] for d in drawn] == [f"chart-{name}" for name in CHARTS]
    for chart in drawn:
        assert chart["traces"] >= 1, chart
        assert chart["drawn"] == chart["traces"], chart  # every series of the figure is in the SVG
    by_id = {d["id"]: d for d in drawn}
    assert by_id["chart-decisions-by-action"]["traces"] == 3  # allow, block, reroute
    assert by_id["chart-decisions-by-action"]["marks"] >= 3
    assert problems == []
    assert blocked == []
