"""Cross-origin browser access (FACEREC_CORS_ALLOW_ORIGINS): off by default, per origin when configured."""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from service.recognition.faces import FaceModel
from service.settings import Settings
from tests.conftest import app_client, auth

ALLOWED = "http://allowed.test:8080"
OTHER = "http://elsewhere.test"


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """CORS is HTTP plumbing, the same on every backend: SQLite is enough."""
    path = tmp_path / "facerec.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def serve_with(
    settings: Settings, model: FaceModel, origins: str
) -> contextlib.AbstractContextManager[TestClient[Litestar]]:
    """The app (in process: CORS is headers, answered by the app) with settings that allow ``origins`` (the
    environment variable's comma-separated form). Browsers reading them: tests/web/test_spec_html.py."""
    return app_client(settings.model_copy(update={"cors_allow_origins": origins}), model)


@pytest.fixture
def cors_client(settings: Settings, face_model: FaceModel) -> Iterator[httpx.Client]:
    """A client of the app that allows pages on ALLOWED (given with a trailing slash, as people write it)."""
    with serve_with(settings, face_model, f"{ALLOWED}/, https://second.test") as http:
        yield http


def preflight(client: httpx.Client, path: str, method: str, origin: str) -> httpx.Response:
    """What a browser sends before a cross-origin request carrying ``Authorization``."""
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization",
        },
    )


def api_operations(client: httpx.Client) -> list[tuple[str, str]]:
    """Every (method, concrete path) under /api/ in the OpenAPI schema, path parameters filled in."""
    schema = client.get("/api/docs/openapi.json").json()
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, operations in schema["paths"].items()
        if path.startswith("/api/")
        for method in operations
        if method in {"get", "post", "patch", "delete"}
    ]


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith("access-control-")}


def test_the_origins_setting_is_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEREC_CORS_ALLOW_ORIGINS", " https://a.example, http://b.example:8080/ ,")
    assert Settings().cors_origins == ["https://a.example", "http://b.example:8080"]


def test_the_origins_setting_is_empty_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACEREC_CORS_ALLOW_ORIGINS", raising=False)
    assert Settings().cors_origins == []


def test_a_preflight_from_an_allowed_origin_may_send_authorization_to_every_api_route(
    cors_client: httpx.Client,
) -> None:
    operations = api_operations(cors_client)
    assert ("POST", "/api/batch-photos/recognize") in operations
    for method, path in operations:
        response = preflight(cors_client, path, method, ALLOWED)
        assert response.status_code == 204, (method, path, response.text)  # answered before auth: no 401
        assert response.headers["access-control-allow-origin"] == ALLOWED
        assert "authorization" in response.headers["access-control-allow-headers"].lower().split(", ")
        assert method in response.headers["access-control-allow-methods"].split(", ")


def test_a_response_to_an_allowed_origin_names_that_origin(
    cors_client: httpx.Client, tokens: Callable[..., str]
) -> None:
    response = cors_client.get("/api/auth/me", headers={**auth(tokens()), "Origin": ALLOWED})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "Origin" in response.headers["vary"]


def test_the_csv_file_name_and_retry_after_are_readable_cross_origin(cors_client: httpx.Client) -> None:
    response = cors_client.get("/api/batch-photos/health", headers={"Origin": ALLOWED})
    exposed = response.headers["access-control-expose-headers"].lower().split(", ")
    assert {"content-disposition", "retry-after"} <= set(exposed)


def test_a_second_configured_origin_is_allowed_too(cors_client: httpx.Client) -> None:
    response = preflight(cors_client, "/api/batch-photos/logs", "GET", "https://second.test")
    assert response.headers["access-control-allow-origin"] == "https://second.test"


@pytest.mark.parametrize(
    ("method", "path", "with_token", "body", "status"),
    [
        ("GET", "/api/batch-photos/logs", False, None, 401),
        ("GET", "/api/batch-photos/logs/20231215_143022_1234", True, None, 404),
        ("GET", "/api/batch-photos/logs?limit=lots", True, None, 400),
        ("PATCH", "/api/identities/1", True, b"{" + b" " * (2 * 1024 * 1024) + b"}", 413),
    ],
    ids=["401", "404", "400", "413"],
)
def test_error_responses_carry_the_cors_headers_so_the_page_can_read_the_error(
    cors_client: httpx.Client,
    tokens: Callable[..., str],
    method: str,
    path: str,
    with_token: bool,
    body: bytes | None,
    status: int,
) -> None:
    headers = {"Origin": ALLOWED, "Content-Type": "application/json"}
    if with_token:
        headers.update(auth(tokens("example.com", "admin")))
    response = cors_client.request(method, path, headers=headers, content=body)
    assert response.status_code == status
    assert response.json()["success"] is False
    assert response.headers["access-control-allow-origin"] == ALLOWED


def test_a_disallowed_origin_gets_no_allow_origin(cors_client: httpx.Client, tokens: Callable[..., str]) -> None:
    refused = preflight(cors_client, "/api/batch-photos/recognize", "POST", OTHER)
    assert refused.status_code == 400
    assert cors_headers(refused) == {}
    response = cors_client.get("/api/auth/me", headers={**auth(tokens()), "Origin": OTHER})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_by_default_no_cors_headers_are_added(client: httpx.Client, tokens: Callable[..., str]) -> None:
    response = preflight(client, "/api/batch-photos/recognize", "POST", ALLOWED)
    assert cors_headers(response) == {}
    response = client.get("/api/auth/me", headers={**auth(tokens()), "Origin": ALLOWED})
    assert response.status_code == 200
    assert cors_headers(response) == {}


def test_a_star_allows_every_origin(settings: Settings, face_model: FaceModel) -> None:
    with serve_with(settings, face_model, "*") as http:
        response = preflight(http, "/api/batch-photos/recognize", "POST", OTHER)
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == "*"
        assert "authorization" in response.headers["access-control-allow-headers"].lower().split(", ")
        unauthorised = http.get("/api/batch-photos/logs", headers={"Origin": OTHER})
        assert unauthorised.status_code == 401
        assert unauthorised.headers["access-control-allow-origin"] == "*"
