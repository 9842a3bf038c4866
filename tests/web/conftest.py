"""A real headless Chromium (Debian's, never downloaded) driving the web page on a live server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
# ``expect(...)`` assertions do not follow ``page.set_default_timeout``: they wait 5 s unless told otherwise, which
# a loaded CI machine can exceed while the live server recognises an upload. They wait as long as page actions do.
EXPECT_TIMEOUT_MS = 60_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """The page is about the browser, so one backend (SQLite) is enough here."""
    path = tmp_path / "facerec.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's Chromium is needed: apt-get install chromium (.ci/run does it)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class PageProblems:
    """JavaScript errors and dialogs seen while a test ran."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser: Browser, tmp_path: Path, problems: PageProblems, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(EXPECT_TIMEOUT_MS)
    tab.on("pageerror", lambda exc: problems.errors.append(f"pageerror: {exc}"))

    def on_console(message) -> None:  # type: ignore[no-untyped-def]
        # Chromium logs every 4xx the page asks for on purpose (a wrong token); those are not script errors.
        if message.type == "error" and "Failed to load resource" not in message.text:
            problems.errors.append(f"console: {message.text}")

    tab.on("console", on_console)
    yield tab
    shots = tmp_path / "screenshots"
    shots.mkdir(exist_ok=True)
    tab.screenshot(path=str(shots / f"{request.node.name}-final.png"), full_page=True)
    context.close()
    assert problems.errors == []
