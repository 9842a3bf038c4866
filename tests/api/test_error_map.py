"""Domain errors are mapped to HTTP once, by class: status, message, and per-file reasons when there are any."""

from __future__ import annotations

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from service.api.errors import EXCEPTION_HANDLERS
from service.common.errors import (
    ConflictError,
    FileError,
    InvalidInputError,
    NotFoundError,
    NothingUsableError,
    ServiceError,
)
from service.common.runner import OverloadedError
from service.gallery.enrollment import IdentityNotFoundError, InvalidNameError, NameTakenError


def answer_to(error: Exception) -> tuple[int, dict[str, object], str | None]:
    @get("/", sync_to_thread=False)
    def fail() -> None:
        raise error

    with TestClient(Litestar([fail], exception_handlers=EXCEPTION_HANDLERS)) as client:
        response = client.get("/")
    return response.status_code, response.json(), response.headers.get("retry-after")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFoundError("Batch not found: x"), 404),
        (IdentityNotFoundError("Identity 3 not found"), 404),
        (ConflictError("taken"), 409),
        (NameTakenError("A person named 'Ann' already exists"), 409),
        (InvalidInputError("threshold must be a number"), 400),
        (InvalidNameError("Invalid name: name must not be empty"), 400),
        (ServiceError("refused"), 400),
    ],
)
def test_each_domain_error_has_its_status_and_its_message(error: Exception, status: int) -> None:
    code, body, _ = answer_to(error)
    assert (code, body) == (status, {"success": False, "error": str(error)})


def test_nothing_usable_lists_each_file_s_reason_under_its_field() -> None:
    error = NothingUsableError("No photo could be enrolled", [FileError("a.jpg", "No face found")], field="rejected")
    code, body, _ = answer_to(error)
    assert code == 400
    assert body == {
        "success": False,
        "error": "No photo could be enrolled",
        "rejected": [{"filename": "a.jpg", "error": "No face found"}],
    }


def test_overload_is_503_with_retry_after() -> None:
    code, body, retry_after = answer_to(OverloadedError(7))
    assert (code, body["success"], retry_after) == (503, False, "7")


def test_an_unexpected_error_is_a_500_without_internals() -> None:
    code, body, _ = answer_to(RuntimeError("secret detail"))
    assert (code, body) == (500, {"success": False, "error": "Internal server error"})
