"""The errors a use case raises for a client's mistake; the HTTP layer maps each class to a status once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from msgspec import Struct

# Why a photo or face was not enrolled, for programs (the ``error`` text says it for people), as AWS Rekognition
# names its unindexed faces' reasons. The quality ones are service.recognition.quality's issue names.
INVALID_PHOTO = "INVALID_PHOTO"  # not a readable image of an accepted kind and size
NO_FACE = "NO_FACE"
DUPLICATE_PHOTO = "DUPLICATE_PHOTO"  # the same photo twice in one upload
ALREADY_ENROLLED = "ALREADY_ENROLLED"  # the same photo is already one of the person's faces
NOT_LIKE_PERSON = "NOT_LIKE_PERSON"  # no face in it looks like the person it is added to (force overrides)
NOT_LIKE_OTHER_PHOTOS = "NOT_LIKE_OTHER_PHOTOS"  # a new person's photo unlike the others (force overrides)


class FileError(Struct, frozen=True):
    """A file that could not be used, and why (batches, enrollment, the CLI)."""

    filename: str
    error: str  # in words, for people


class RejectedPhoto(FileError, frozen=True, omit_defaults=True):  # noqa: N818 (a record, not an exception)
    """A photo (or stored face) enrollment refused: why in words, and as codes a program can act on."""

    reasons: list[str] = []  # NO_FACE, BLURRY, NOT_LIKE_PERSON, ...
    can_force: bool = False  # sending it again with force=true enrolls it


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
