"""The API docs (Swagger UI at /api/docs) work with no internet: every asset comes from the server itself."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Page, Route, expect

from tests.conftest import LiveServer


def test_the_api_docs_list_the_operations_with_every_outside_request_blocked(
    page: Page, live_server: LiveServer
) -> None:
    outside: list[str] = []

    def local_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    page.goto(live_server.url + "/api/docs")
    recognize = page.locator(".opblock", has_text="/api/batch-photos/recognize")
    expect(recognize.first).to_be_visible()
    expect(page.locator(".opblock")).not_to_have_count(0)
    assert outside == []


def test_the_swagger_assets_are_public_and_cacheable(client: httpx.Client) -> None:
    page = client.get("/api/docs").text
    scripts = [part.split('"')[0] for part in page.split('src="')[1:]]
    assert scripts, "the docs page names no script"
    for url in scripts:
        assert url.startswith("/api/docs/assets/swagger-ui-"), url
        response = client.get(url)  # no token
        assert response.status_code == 200, url
        assert "max-age" in response.headers["cache-control"]


def test_the_swagger_assets_are_not_in_the_api_schema(client: httpx.Client) -> None:
    paths = client.get("/api/docs/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/api/docs")]


def test_the_schema_declares_the_token_header_so_the_docs_can_authorize(client: httpx.Client) -> None:
    schema = client.get("/api/docs/openapi.json").json()
    assert schema["components"]["securitySchemes"]["token"] == {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "An API token (`facerec token create`); `Bearer <token>` works too",
    }
    assert schema["security"] == [{"token": []}]
