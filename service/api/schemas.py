"""Response shapes of the HTTP layer (msgspec); field names follow the spec exactly, extras are additive.

Batches and people are served in the shapes of :mod:`service.batches.views` and :mod:`service.gallery.views`;
what is only HTTP's lives here.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from service.batches.summary import Summary
from service.common.errors import FileError, RejectedPhoto


class RecognizeResponse(Struct):
    success: bool
    batch_id: str
    total_uploaded: int
    total_processed: int
    summary: Summary
    message: str
    log_url: str
    errors: list[FileError]
    threshold: float
    export_url: str


class ErrorResponse(Struct):
    success: bool
    error: str


class NothingUsableResponse(Struct, omit_defaults=True):
    """A 400: ``error`` says why; when no uploaded file could be used, each file's reason is listed."""

    success: bool
    error: str
    errors: list[FileError] | None = None  # batches
    rejected: list[RejectedPhoto] | None = None  # enrollment


class MessageResponse(Struct):
    success: bool
    message: str


class WhoAmIResponse(Struct, omit_defaults=True):
    success: bool
    domain: str
    role: str
    worker_pid: int | None = None  # admin tokens only: which server process answered


class HealthResponse(Struct):
    status: str
    service: str
    version: str
    log_directory_exists: bool
    endpoints: list[str]
    database: str
    models_loaded: bool
    model: str
    index_loaded: bool
    indexed_domains: int
    indexed_faces: int


class RenameRequest(Struct):
    name: str


class FaceCorrectionRequest(Struct, forbid_unknown_fields=True):
    """Who a recognised face is: a person's id, or null for Unknown; ``add_to_gallery`` also enrolls the face."""

    identity_id: Annotated[int, Meta(ge=1, le=2_147_483_647)] | None
    add_to_gallery: bool = False
