"""The spec document's own HTML/JavaScript client, served from another origin, works against the service."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from service.recognition.faces import FaceModel
from service.settings import Settings
from tests.api.spec_client import SPEC, SPEC_HOST
from tests.conftest import KNN, LiveServer, enroll_knn_train
from tests.web.conftest import PageProblems

SPEC_TOKEN = "YOUR_TOKEN"
THREE = [KNN / "test" / name for name in ("obama1.jpg", "johnsnow_test1.jpg", "alex_lacamoire1.jpg")]


def spec_html_page(api_url: str, token: str) -> str:
    """The spec's "HTML Form" example with only its API URL and its token replaced."""
    section = SPEC.read_text().split("### HTML Form", 1)[1]
    found = re.search(r"```html\n(.*?)```", section, re.DOTALL)
    assert found is not None, "the spec's HTML example was not found"
    html = found.group(1)
    assert SPEC_HOST in html, "the spec's HTML example no longer calls the spec's host"
    assert SPEC_TOKEN in html, "the spec's HTML example no longer has a token placeholder"
    return html.replace(SPEC_HOST, api_url).replace(SPEC_TOKEN, token)


class QuietHandler(SimpleHTTPRequestHandler):
    """Static files without a log line per request."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class StaticSite:
    """A folder served over HTTP on a free loopback port: a web page of another origin than the API."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[StaticSite]:
    folder = tmp_path / "site"
    folder.mkdir()
    served = StaticSite(folder)
    yield served
    served.close()


@pytest.fixture
def api(settings: Settings, site: StaticSite, face_model: FaceModel) -> Iterator[LiveServer]:
    """The service, allowing the site's origin (as an operator would with FACEREC_CORS_ALLOW_ORIGINS)."""
    with LiveServer(settings.model_copy(update={"cors_allow_origins": site.origin}), model=face_model) as server:
        yield server


def open_spec_page(page: Page, site: StaticSite, api_url: str, token: str) -> None:
    (site.folder / "index.html").write_text(spec_html_page(api_url, token))
    page.goto(site.origin + "/index.html")
    expect(page.get_by_role("heading", name="Upload Photos for Recognition")).to_be_visible()


def submit(page: Page, *photos: Path) -> None:
    page.set_input_files("#photoInput", [str(p) for p in photos])
    page.get_by_role("button", name="Upload & Recognize").click()


def test_the_spec_html_page_on_another_origin_shows_the_results(
    page: Page, site: StaticSite, api: LiveServer, tokens: Callable[..., str]
) -> None:
    admin = tokens("example.com", "admin")
    with httpx.Client(base_url=api.url, timeout=120) as client:
        enroll_knn_train(client, admin)
    open_spec_page(page, site, api.url, admin)
    submit(page, *THREE)
    results = page.locator("#results")
    expect(results.get_by_role("heading", name="Results")).to_be_visible()
    expect(results).to_contain_text("Processed: 3 photos")
    expect(results).to_contain_text("Recognition Rate: 100%")
    expect(results).to_contain_text("Unique Persons: obama, kit_harington, alex_lacamoire")


def test_the_spec_html_page_on_another_origin_reads_the_error_of_a_wrong_token(
    page: Page, site: StaticSite, api: LiveServer
) -> None:
    open_spec_page(page, site, api.url, "frk_not-a-real-token")
    submit(page, THREE[0])
    expect(page.locator("#results")).to_have_text("Error: Invalid or revoked API token")


def test_without_the_origin_allowed_the_browser_blocks_the_spec_page(
    page: Page, site: StaticSite, live_server: LiveServer, tokens: Callable[..., str], problems: PageProblems
) -> None:
    open_spec_page(page, site, live_server.url, tokens("example.com", "admin"))
    submit(page, THREE[0])
    expect(page.locator("#results")).to_have_text("Error: Failed to fetch")
    # Chromium reports the refusal on the console; that is the behaviour under test, not a script error.
    assert any("blocked by CORS policy" in error for error in problems.errors), problems.errors
    problems.errors.clear()
