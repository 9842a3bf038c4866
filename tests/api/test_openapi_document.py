"""The OpenAPI document describes every operation's success response with a schema."""

from __future__ import annotations

from typing import Any

import pytest

from service.app import create_app
from service.settings import Settings

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("openapi")
    app = create_app(Settings(database_url=f"sqlite:///{folder / 'db.sqlite'}", storage_dir=folder))
    return app.openapi_schema.to_schema()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_operation_s_success_response_has_a_schema(document: dict[str, Any]) -> None:
    missing = []
    for method, path, operation in operations(document):
        successes = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        if not successes:
            missing.append(f"{method} {path}: no 2xx response")
        for code, response in successes.items():
            content = response.get("content") or {}
            if not content or not all(media.get("schema") for media in content.values()):
                missing.append(f"{method} {path} {code}: no schema")
    assert missing == []


def test_every_schema_a_response_refers_to_is_defined(document: dict[str, Any]) -> None:
    defined = set(document["components"]["schemas"])
    referred = {
        media["schema"]["$ref"].rsplit("/", 1)[-1]
        for _, _, operation in operations(document)
        for response in operation["responses"].values()
        for media in (response.get("content") or {}).values()
        if "$ref" in media.get("schema", {})
    }
    assert referred
    assert referred <= defined


def test_the_spec_endpoints_are_documented_with_their_response_types(document: dict[str, Any]) -> None:
    def success_ref(method: str, path: str) -> str:
        operation = document["paths"][path][method]
        response = next(r for code, r in operation["responses"].items() if code.startswith("2"))
        return str(next(iter(response["content"].values()))["schema"].get("$ref", "")).rsplit("/", 1)[-1]

    assert success_ref("post", "/api/batch-photos/recognize") == "RecognizeResponse"
    assert success_ref("get", "/api/batch-photos/logs/{batch_id}") == "BatchLog"
    assert success_ref("get", "/api/batch-photos/logs") == "BatchPage"
    assert success_ref("post", "/api/identities") == "EnrollmentResponse"
    csv = document["paths"]["/api/batch-photos/logs/{batch_id}/export"]["get"]["responses"]["200"]["content"]
    assert list(csv) == ["text/csv"]


def test_a_refused_upload_documents_the_per_file_reasons(document: dict[str, Any]) -> None:
    bad = document["paths"]["/api/batch-photos/recognize"]["post"]["responses"]["400"]["content"]
    schema = document["components"]["schemas"][bad["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert {"success", "error", "errors", "rejected"} <= set(schema["properties"])


def test_batch_errors_are_filename_and_error_and_enrollment_refusals_add_their_codes(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    def item_of(schema_name: str, field: str) -> dict[str, Any]:
        items = schemas[schema_name]["properties"][field]["items"]
        return dict(schemas[items["$ref"].rsplit("/", 1)[-1]])

    assert set(item_of("BatchLog", "errors")["properties"]) == {"filename", "error"}  # the spec's shape
    assert set(item_of("EnrollmentResponse", "rejected")["properties"]) == {"filename", "error", "reasons", "can_force"}
