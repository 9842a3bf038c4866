"""The six batch endpoints of the spec: parse the request, call :class:`BatchService`, return its result."""

from __future__ import annotations

import math
import unicodedata
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import FromPath, JSONBody, Parameter, PathParameter
from litestar.response import Stream

from service.api.audit import AUDIT_OPT_KEY, note_for_audit
from service.api.auth import admin_only
from service.api.openapi import RecognizeOperation
from service.api.schemas import (
    ErrorResponse,
    FaceCorrectionRequest,
    MessageResponse,
    NothingUsableResponse,
    RecognizeResponse,
)
from service.api.state import Uploads
from service.api.uploads import receive_photos
from service.batches.export import CSV_COLUMNS
from service.batches.service import BatchRequest, BatchService, Correction
from service.batches.views import BatchLog, BatchPage, EntryView
from service.common.runner import BoundedRunner
from service.db.tokens import Principal
from service.settings import Settings

MAX_OFFSET = 2_147_483_647  # beyond SQL integer range nothing can be skipped to
IdPath = Annotated[int, PathParameter(ge=1, le=2_147_483_647)]
IndexPath = Annotated[int, PathParameter(ge=0, le=100_000)]
JSON_BODY_LIMIT = 64 * 1024
BASE = "/api/batch-photos"
ERROR_RESPONSE = ResponseSpec(data_container=ErrorResponse, description='`{"success": false, "error": "<message>"}`')
NOTHING_USABLE_RESPONSE = ResponseSpec(
    data_container=NothingUsableResponse,
    description="A bad request: `error` says why; when no file was a usable photo, `errors` says why for each",
)


def parse_threshold(raw: Any, default: float) -> float:
    """The ``threshold`` form field (0-100), or ``default`` when absent or blank."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= 100:
        raise ValidationException(f"threshold must be a number from 0 to 100 (got {str(raw)[:40]!r})")
    return value


class BatchUploadController(Controller):
    """The upload route, mounted under a router whose body limit fits a full batch."""

    path = BASE

    @post(
        "/recognize",
        status_code=200,
        summary="Recognise faces in up to 100 photos",
        operation_class=RecognizeOperation,
        responses={
            400: NOTHING_USABLE_RESPONSE,
            401: ERROR_RESPONSE,
            413: ERROR_RESPONSE,
            503: ERROR_RESPONSE,
        },
    )
    async def recognize(
        self,
        request: Request[Principal, str, Any],
        batches: NamedDependency[BatchService],
        runner: NamedDependency[BoundedRunner],
        uploads: NamedDependency[Uploads],
        settings: NamedDependency[Settings],
    ) -> RecognizeResponse:
        """Upload ``photos[]`` (multipart); every photo is detected, embedded, searched and logged."""
        principal: Principal = request.user
        runner.check(principal.token_id)  # a full queue refuses before the upload is received
        form = await receive_photos(
            request,
            uploads.limits,
            uploads.spool,
            too_many=lambda sent: f"Batch size exceeds maximum of {settings.max_batch_size} photos ({sent} uploaded)",
        )
        try:
            threshold = parse_threshold(form.fields.get("threshold"), settings.match_threshold)
            batch_request = BatchRequest(
                photos=form.files,
                domain=principal.domain,
                threshold=threshold,
                rejected_fields=form.text_in_photo_fields,
            )
            run = await runner.run(principal.token_id, batches.recognize, batch_request)
        finally:
            form.close()
        batch, errors = run.batch, run.errors
        processed = batch.total_processed
        return RecognizeResponse(
            success=True,
            batch_id=batch.id,
            total_uploaded=batch.total_uploaded,
            total_processed=processed,
            summary=run.summary,
            message=f"Processed {processed} photos. Check batch log for details."
            + (f" {len(errors)} file(s) could not be used." if errors else ""),
            log_url=f"{BASE}/logs/{batch.id}",
            errors=errors,
            threshold=threshold,
            export_url=f"{BASE}/logs/{batch.id}/export",
        )


class BatchLogController(Controller):
    """Reading, exporting and deleting batch logs of the caller's domain."""

    path = f"{BASE}/logs"

    @get("/", summary="List batches, newest first", sync_to_thread=True)
    def list_batches(
        self,
        request: Request[Principal, str, Any],
        batches: NamedDependency[BatchService],
        limit: int = Parameter(default=50, ge=1, le=500, description="batches per page (1-500)"),
        offset: int = Parameter(default=0, ge=0, le=MAX_OFFSET, description="batches to skip"),
        person: str | None = Parameter(
            default=None,
            max_length=255,
            description="only batches where this person (an id, or a name in any case) was recognised on any face",
        ),
    ) -> BatchPage:
        """The domain's batches, newest first; ``total`` counts them all."""
        if person is not None and any(unicodedata.category(ch)[0] == "C" for ch in person):
            raise ValidationException("person must not contain control characters")
        return batches.page(request.user.domain, limit, offset, person)

    @get("/{batch_id:str}", summary="A batch's detailed log", sync_to_thread=True, responses={404: ERROR_RESPONSE})
    def get_log(
        self, request: Request[Principal, str, Any], batches: NamedDependency[BatchService], batch_id: FromPath[str]
    ) -> BatchLog:
        """Summary and every entry with its top-3 matches."""
        return batches.log(request.user.domain, batch_id)

    @get(
        "/{batch_id:str}/export",
        summary="A batch as CSV",
        media_type="text/csv",
        sync_to_thread=True,
        responses={
            200: ResponseSpec(
                data_container=str,
                media_type="text/csv",
                description="The spec's 14 columns, UTF-8, header line first",
                examples=[Example(value=f"{','.join(CSV_COLUMNS)}\r\n")],
            ),
            404: ERROR_RESPONSE,
        },
    )
    def export_csv(
        self,
        request: Request[Principal, str, Any],
        batches: NamedDependency[BatchService],
        batch_id: FromPath[str],
        rows: Literal["photos", "faces"] = Parameter(
            default="photos",
            description="`photos`: the spec's 14 columns, one row per photo; `faces`: one row per recognised face",
        ),
    ) -> Stream:
        """The spec's 14 CSV columns (or one row per face with ``rows=faces``), streamed from SQL."""
        suffix = "_faces" if rows == "faces" else ""
        return Stream(
            batches.export(request.user.domain, batch_id, rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="batch_{batch_id}{suffix}.csv"'},
        )

    @delete(
        "/{batch_id:str}",
        status_code=200,
        opt={AUDIT_OPT_KEY: "delete batch"},
        summary="Delete a batch and its entries",
        sync_to_thread=True,
        responses={404: ERROR_RESPONSE},
    )
    def delete_log(
        self, request: Request[Principal, str, Any], batches: NamedDependency[BatchService], batch_id: FromPath[str]
    ) -> MessageResponse:
        """Remove the batch and all its entries."""
        batches.delete(request.user.domain, batch_id)
        return MessageResponse(success=True, message=f"Batch {batch_id} deleted successfully")

    @get(
        "/{batch_id:str}/faces/{face_id:int}/crop",
        summary="A recognised face's crop (JPEG)",
        media_type="image/jpeg",
        sync_to_thread=True,
        responses={
            200: ResponseSpec(data_container=bytes, media_type="image/jpeg", description="The aligned 112x112 face"),
            404: ERROR_RESPONSE,
        },
    )
    def face_crop(
        self,
        request: Request[Principal, str, Any],
        batches: NamedDependency[BatchService],
        batch_id: FromPath[str],
        face_id: IdPath,
    ) -> Response[bytes]:
        """The aligned face crop kept with the batch (``FACEREC_KEEP_BATCH_FACES``)."""
        data = batches.crop(request.user.domain, batch_id, face_id)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @patch(
        "/{batch_id:str}/entries/{entry_index:int}/faces/{face_index:int}",
        opt={AUDIT_OPT_KEY: "correct face"},
        summary="Correct who a recognised face is (admin)",
        guards=[admin_only],
        sync_to_thread=True,
        request_max_body_size=JSON_BODY_LIMIT,
        responses={400: ERROR_RESPONSE, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE},
    )
    def correct_face(
        self,
        request: Request[Principal, str, Any],
        batches: NamedDependency[BatchService],
        batch_id: FromPath[str],
        entry_index: IndexPath,
        face_index: IndexPath,
        data: JSONBody[FaceCorrectionRequest],
    ) -> EntryView:
        """JSON ``{"identity_id": 5}`` (or ``null`` for Unknown; ``"add_to_gallery": true`` also enrolls the stored
        face): entry ``entry_index`` (0-based, as in the log's ``entries``) and its face ``face_index`` (0 = the
        largest). The entry, the batch summary and both CSVs follow; the correction is recorded."""
        corrected_to = "Unknown" if data.identity_id is None else data.identity_id
        note_for_audit(request, corrected_to=corrected_to, add_to_gallery=data.add_to_gallery or None)
        change = Correction(data.identity_id, data.add_to_gallery, request.user.token_id)
        return batches.correct_face(request.user.domain, batch_id, entry_index, face_index, change)
