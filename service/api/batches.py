"""The six batch endpoints of the spec: parse the request, call :class:`BatchService`, return its result."""

from __future__ import annotations

import math
from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import FromPath, Parameter
from litestar.response import Stream

from service.api.openapi import RecognizeOperation
from service.api.schemas import ErrorResponse, MessageResponse, NothingUsableResponse, RecognizeResponse
from service.api.state import Uploads
from service.api.uploads import receive_photos
from service.batches.export import CSV_COLUMNS
from service.batches.service import BatchRequest, BatchService
from service.batches.views import BatchLog, BatchPage
from service.common.runner import BoundedRunner
from service.db.tokens import Principal
from service.settings import Settings

MAX_OFFSET = 2_147_483_647  # beyond SQL integer range nothing can be skipped to
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
    ) -> BatchPage:
        """The domain's batches, newest first; ``total`` counts them all."""
        return batches.page(request.user.domain, limit, offset)

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
        self, request: Request[Principal, str, Any], batches: NamedDependency[BatchService], batch_id: FromPath[str]
    ) -> Stream:
        """The spec's 14 CSV columns, streamed from SQL."""
        return Stream(
            batches.export(request.user.domain, batch_id),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="batch_{batch_id}.csv"'},
        )

    @delete(
        "/{batch_id:str}",
        status_code=200,
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
