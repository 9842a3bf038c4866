"""The web page is served with a strict Content-Security-Policy (README: "Data is always inserted as text ...
and the page is served with a strict Content-Security-Policy"): scripts and styles only from the service's own
origin, no inline or eval'd script, no plugins, no <base> rewriting, no framing, forms post only to itself."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page

from tests.conftest import LiveServer
from tests.web.conftest import PageProblems

PAGE_PATHS = ["/", "/web"]


def policy(response: httpx.Response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as directive -> sources."""
    header = response.headers.get("content-security-policy")
    assert header, "the page is served without a Content-Security-Policy"
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name.lower(): sources for name, *sources in directives}


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_scripts_and_styles_come_only_from_the_services_own_origin(client: httpx.Client, path: str) -> None:
    directives = policy(client.get(path))
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]  # no 'unsafe-inline', 'unsafe-eval', hosts, data: or blob:
    assert directives["style-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_plugins_base_rewriting_framing_and_foreign_form_targets_are_refused(client: httpx.Client, path: str) -> None:
    directives = policy(client.get(path))
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["form-action"] == ["'self'"]


def test_no_directive_allows_inline_code_eval_or_any_host(client: httpx.Client) -> None:
    sources = {source for sources in policy(client.get("/")).values() for source in sources}
    assert not sources & {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*", "http:", "https:"}
    assert sources <= {"'self'", "'none'", "blob:", "data:"}


def test_the_page_tells_browsers_not_to_sniff_types_or_send_referrers(client: httpx.Client) -> None:
    headers = client.get("/").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_the_browser_refuses_to_run_a_script_injected_into_the_page(
    page: Page, live_server: LiveServer, problems: PageProblems
) -> None:
    page.goto(live_server.url + "/")
    # Settles either way: the injected script runs (and says so), or the browser reports the violation.
    outcome = page.evaluate(
        """() => new Promise((resolve) => {
            window.__injectedRan = () => resolve('ran');
            document.addEventListener('securitypolicyviolation', (e) => resolve('refused: ' + e.violatedDirective));
            const script = document.createElement('script');
            script.textContent = 'window.__injectedRan()';
            document.body.appendChild(script);
        })"""
    )
    assert outcome.startswith("refused: script-src"), outcome
    # Chromium also logs the refusal; it is the expected outcome here, not a page error.
    refusals = [e for e in problems.errors if "Content Security Policy" in e]
    assert refusals
    problems.errors[:] = [e for e in problems.errors if e not in refusals]
