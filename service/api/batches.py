"""The six batch endpoints of the spec."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, Parameter
from litestar.response import Response, Stream
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
)
from sqlalchemy.orm import Session, sessionmaker

from service.api.openapi import RecognizeOperation
from service.api.schemas import (
    BatchListItem,
    BatchListResponse,
    BatchLogResponse,
    EntryMetadata,
    EntryOut,
    ErrorResponse,
    FaceOut,
    FileErrorOut,
    MatchOut,
    MessageResponse,
    PrimaryResult,
    RecognizeResponse,
    SummaryOut,
)
from service.api.state import Services
from service.api.uploads import NoPhotosError, receive_form
from service.batches.export import stream_csv
from service.batches.ids import is_batch_id
from service.batches.recording import stored_summary
from service.batches.summary import Summary
from service.batches.workflow import BatchRequest, BatchRun, run_batch
from service.common.time import format_timestamp
from service.db import batches as batch_queries
from service.db.models import Batch, BatchEntry
from service.db.tokens import Principal

MAX_OFFSET = 2_147_483_647  # beyond SQL integer range nothing can be skipped to
BASE = "/api/batch-photos"
ERROR_RESPONSE = ResponseSpec(data_container=ErrorResponse, description='`{"success": false, "error": "<message>"}`')
PHOTO_FIELDS = ("photos[]", "photos")


def summary_out(summary: Summary) -> SummaryOut:
    """The spec's summary block."""
    return SummaryOut(**dataclasses.asdict(summary))


def entry_out(entry: BatchEntry, batch: Batch) -> EntryOut:
    """One stored entry in the spec's shape, with every face's detail as an extra."""
    faces = [
        FaceOut(
            box=list(face["box"]),
            det_score=face["det_score"],
            matches=[MatchOut(m["rank"], m["person"], m["confidence"], m.get("similarity")) for m in face["matches"]],
        )
        for face in entry.faces
    ]
    primary_similarities = [m.similarity for m in faces[0].matches] if faces else []
    columns = [
        (entry.match1_person, entry.match1_confidence),
        (entry.match2_person, entry.match2_confidence),
        (entry.match3_person, entry.match3_confidence),
    ]
    top = [
        MatchOut(
            rank=rank,
            person=person,
            confidence=confidence if confidence is not None else 0.0,
            similarity=primary_similarities[rank - 1] if rank <= len(primary_similarities) else None,
        )
        for rank, (person, confidence) in enumerate(columns, start=1)
        if person is not None
    ]
    primary = (
        PrimaryResult(person=entry.primary_person or "Unknown", confidence=entry.primary_confidence)
        if entry.recognized
        else PrimaryResult(person="Unknown", confidence=None)
    )
    return EntryOut(
        timestamp=format_timestamp(entry.timestamp),
        batch_id=batch.id,
        filename=entry.filename,
        domain=batch.domain,
        recognized=entry.recognized,
        primary_result=primary,
        top_3_matches=top,
        metadata=EntryMetadata(
            face_count=entry.face_count,
            processing_time_ms=entry.processing_time_ms,
            has_multiple_faces=entry.face_count > 1,
            faces_recognized=len(faces) if len(faces) < entry.face_count else None,
            note=(
                f"{entry.face_count} faces detected; the {len(faces)} largest were recognised (face limit reached)"
                if len(faces) < entry.face_count
                else None
            ),
        ),
        faces=faces,
    )


def _errors_out(batch: Batch) -> list[FileErrorOut]:
    return [FileErrorOut(filename=e["filename"], error=e["error"]) for e in batch.errors]


def _parse_threshold(raw: Any, default: float) -> float:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= 100:
        raise ValidationException(f"threshold must be a number from 0 to 100 (got {str(raw)[:40]!r})")
    return value


def _not_found(batch_id: str) -> NotFoundException:
    return NotFoundException(f"Batch not found: {batch_id[:64]}")


def _load_batch(sessions: sessionmaker[Session], domain: str, batch_id: str) -> tuple[Batch, list[BatchEntry]] | None:
    with sessions() as session:
        batch = batch_queries.get_batch(session, domain, batch_id)
        if batch is None:
            return None
        return batch, list(batch_queries.iter_entries(session, batch_id))


def _csv_stream(sessions: sessionmaker[Session], batch_id: str, domain: str) -> Iterator[bytes]:
    # Chunked reads, each on a connection released before the chunk goes out: a slow client pins nothing.
    return stream_csv(sessions, batch_id, domain)


class BatchUploadController(Controller):
    """The upload route, mounted under a router whose body limit fits a full batch."""

    path = BASE

    @post(
        "/recognize",
        status_code=200,
        summary="Recognise faces in up to 100 photos",
        operation_class=RecognizeOperation,
        responses={
            400: ERROR_RESPONSE,
            401: ERROR_RESPONSE,
            413: ERROR_RESPONSE,
            503: ERROR_RESPONSE,
        },
    )
    async def recognize(
        self, request: Request[Principal, str, Any], services: NamedDependency[Services]
    ) -> Response[Any]:
        """Upload ``photos[]`` (multipart); every photo is detected, embedded, searched and logged."""
        principal: Principal = request.user
        settings = services.settings
        services.runner.check(principal.token_id)  # a full queue refuses before the upload is received
        form = await receive_form(request, services.upload_limits(), services.spool)
        try:
            threshold = _parse_threshold(form.fields.get("threshold"), settings.match_threshold)
            sent = form.photos_sent
            if not sent:
                raise NoPhotosError("No photos uploaded: send files in the photos[] form field")
            if sent > settings.max_batch_size:
                raise ValidationException(
                    f"Batch size exceeds maximum of {settings.max_batch_size} photos ({sent} uploaded)"
                )
            if not form.files:
                raise NoPhotosError("No photos uploaded: photos[] must hold files, not text")
            batch_request = BatchRequest(
                photos=form.files,
                domain=principal.domain,
                threshold=threshold,
                rejected_fields=form.text_in_photo_fields,
            )
            run: BatchRun = await services.runner.run(
                principal.token_id,
                run_batch,
                batch_request,
                services.model,
                services.gallery,
                services.sessions,
                settings,
                services.metrics,
            )
        finally:
            form.close()

        errors = [FileErrorOut(filename=e.filename, error=e.error) for e in run.outcome.errors]
        if run.batch is None:
            return Response(
                {
                    "success": False,
                    "error": "None of the uploaded files is a usable photo",
                    "errors": [{"filename": e.filename, "error": e.error} for e in errors],
                },
                status_code=HTTP_400_BAD_REQUEST,
            )
        batch = run.batch
        services.metrics.batch()
        processed = batch.total_processed
        body = RecognizeResponse(
            success=True,
            batch_id=batch.id,
            total_uploaded=batch.total_uploaded,
            total_processed=processed,
            summary=summary_out(run.summary),
            message=f"Processed {processed} photos. Check batch log for details."
            + (f" {len(errors)} file(s) could not be used." if errors else ""),
            log_url=f"{BASE}/logs/{batch.id}",
            errors=errors,
            threshold=threshold,
            export_url=f"{BASE}/logs/{batch.id}/export",
        )
        return Response(body, status_code=200)


class BatchLogController(Controller):
    """Reading, exporting and deleting batch logs of the caller's domain."""

    path = f"{BASE}/logs"

    @get("/", summary="List batches, newest first", sync_to_thread=True)
    def list_batches(
        self,
        request: Request[Principal, str, Any],
        services: NamedDependency[Services],
        limit: int = Parameter(default=50, ge=1, le=500, description="batches per page (1-500)"),
        offset: int = Parameter(default=0, ge=0, le=MAX_OFFSET, description="batches to skip"),
    ) -> BatchListResponse:
        """The domain's batches, newest first; ``total`` counts them all."""
        with services.sessions() as session:
            page = batch_queries.list_batches(session, request.user.domain, limit, offset)
        return BatchListResponse(
            success=True,
            total=page.total,
            batches=[
                BatchListItem(
                    batch_id=b.id,
                    total_photos=b.total_processed,
                    summary=summary_out(stored_summary(b)),
                    created_at=format_timestamp(b.created_at),
                    total_uploaded=b.total_uploaded,
                )
                for b in page.batches
            ],
            limit=limit,
            offset=offset,
        )

    @get("/{batch_id:str}", summary="A batch's detailed log", sync_to_thread=True)
    def get_log(
        self, request: Request[Principal, str, Any], services: NamedDependency[Services], batch_id: FromPath[str]
    ) -> BatchLogResponse:
        """Summary and every entry with its top-3 matches."""
        loaded = _load_batch(services.sessions, request.user.domain, batch_id) if is_batch_id(batch_id) else None
        if loaded is None:
            raise _not_found(batch_id)
        batch, entries = loaded
        return BatchLogResponse(
            success=True,
            batch_id=batch.id,
            total_photos=batch.total_processed,
            summary=summary_out(stored_summary(batch)),
            entries=[entry_out(entry, batch) for entry in entries],
            created_at=format_timestamp(batch.created_at),
            total_uploaded=batch.total_uploaded,
            threshold=batch.threshold,
            errors=_errors_out(batch),
        )

    @get("/{batch_id:str}/export", summary="A batch as CSV", media_type="text/csv", sync_to_thread=True)
    def export_csv(
        self, request: Request[Principal, str, Any], services: NamedDependency[Services], batch_id: FromPath[str]
    ) -> Stream:
        """The spec's 14 CSV columns, streamed from SQL."""
        domain = request.user.domain
        with services.sessions() as session:
            found = is_batch_id(batch_id) and batch_queries.get_batch(session, domain, batch_id) is not None
        if not found:
            raise _not_found(batch_id)
        return Stream(
            _csv_stream(services.sessions, batch_id, domain),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="batch_{batch_id}.csv"'},
        )

    @delete("/{batch_id:str}", status_code=200, summary="Delete a batch and its entries", sync_to_thread=True)
    def delete_log(
        self, request: Request[Principal, str, Any], services: NamedDependency[Services], batch_id: FromPath[str]
    ) -> MessageResponse:
        """Remove the batch and all its entries."""
        with services.sessions.begin() as session:
            deleted = is_batch_id(batch_id) and batch_queries.delete_batch(session, request.user.domain, batch_id)
        if not deleted:
            raise _not_found(batch_id)
        return MessageResponse(success=True, message=f"Batch {batch_id} deleted successfully")
