"""The errors a use case raises for a client's mistake; the HTTP layer maps each class to a status once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from msgspec import Struct


class FileError(Struct, frozen=True):
    """A file that could not be used, and why (batches, enrollment, the CLI)."""

    filename: str
    error: str


class ServiceError(Exception):
    """A request the service refuses; the message says why, for the client, and ``details`` (extra fields of
    the error body) what it needs to act on it."""

    details: dict[str, Any] = {}


class NotFoundError(ServiceError):
    """No such batch, person or face in the caller's domain."""


class ConflictError(ServiceError):
    """The request clashes with what exists (a name already taken)."""


class InvalidInputError(ServiceError):
    """A value of the request is out of range or malformed."""


class NothingUsableError(ServiceError):
    """None of the uploaded files could be used; ``files`` says why for each, under the key ``field``."""

    def __init__(self, message: str, files: Sequence[FileError], field: str) -> None:
        super().__init__(message)
        self.files = list(files)
        self.field = field
        self.details = {field: msgspec.to_builtins(self.files)}
