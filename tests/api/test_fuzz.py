"""Fuzz every operation of the OpenAPI schema (bounded examples): the server never answers 5xx."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import LiveServer

EXAMPLES_PER_OPERATION = 25


def test_no_operation_answers_5xx(live_server: LiveServer, client: httpx.Client, tokens: Callable[..., str]) -> None:
    schema = schemathesis.openapi.from_dict(client.get("/api/docs/openapi.json").json())
    token = tokens("fuzz.example", "admin")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    seen: list[str] = []

    def fuzz(operation: Any) -> Callable[[], None]:
        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            response = case.call(base_url=live_server.url, headers={"Authorization": token}, timeout=60)
            seen.append(operation.label)
            assert response.status_code < 500, (
                case.method,
                case.formatted_path,
                response.status_code,
                response.text[:300],
            )
            content_type = str(response.headers.get("content-type", ""))
            if response.status_code >= 400 and "application/json" in content_type:
                assert response.json()["success"] is False

        return call  # type: ignore[no-any-return]

    for operation in operations:
        fuzz(operation)()
    assert len(set(seen)) == len(operations)
