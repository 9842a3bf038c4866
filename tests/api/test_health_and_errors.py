"""Health without a token; every error, even for unknown routes, in the JSON error shape."""

from __future__ import annotations

from collections.abc import Callable

import httpx

SPEC_HEALTH_FIELDS = {"status", "service", "version", "log_directory_exists", "endpoints"}


def test_health_answers_without_a_token_with_the_spec_fields(client: httpx.Client) -> None:
    response = client.get("/api/batch-photos/health")
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= SPEC_HEALTH_FIELDS
    assert body["status"] == "healthy"
    assert body["service"] == "batch_photo_recognition"
    assert body["version"] == "v1"
    assert body["log_directory_exists"] is True
    assert "POST /api/batch-photos/recognize" in body["endpoints"]
    assert len(body["endpoints"]) == 6
    assert body["models_loaded"] is True
    assert body["index_loaded"] is True


def test_an_unknown_route_is_a_json_404(client: httpx.Client) -> None:
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"success": False, "error": "Not Found"}


def test_a_wrong_method_is_a_json_405(client: httpx.Client, tokens: Callable[..., str]) -> None:
    response = client.put("/api/batch-photos/health")
    assert response.status_code == 405
    assert response.json()["success"] is False


def test_a_validation_failure_is_a_json_400_naming_the_parameter(
    client: httpx.Client, tokens: Callable[..., str]
) -> None:
    response = client.get("/api/batch-photos/logs?limit=0", headers={"Authorization": tokens()})
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert "limit" in body["error"]


def test_an_oversized_json_body_is_a_json_413(client: httpx.Client, tokens: Callable[..., str]) -> None:
    response = client.patch(
        "/api/identities/1",
        headers={"Authorization": tokens(role="admin"), "Content-Type": "application/json"},
        content=b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}',
    )
    assert response.status_code == 413
    assert response.json()["success"] is False


def test_the_openapi_schema_is_served_without_a_token(client: httpx.Client) -> None:
    response = client.get("/api/docs/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    upload = paths["/api/batch-photos/recognize"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert upload["schema"]["required"] == ["photos[]"]
    assert set(upload["schema"]["properties"]) == {"photos[]", "threshold"}
    enroll = paths["/api/identities"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert set(enroll["schema"]["required"]) == {"name", "photos[]"}
