"""The batch use cases — recognise and store, list, read, export, delete — for the API and the CLI alike.

:class:`BatchService` owns the sessions and transactions; callers parse their input, call it and show the
result. Client mistakes are raised as :mod:`service.common.errors`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from service.batches.export import stream_csv
from service.batches.ids import is_batch_id, new_batch_id
from service.batches.pipeline import Limits, Observer, recognize_photos
from service.batches.recording import store_batch
from service.batches.results import BatchOutcome, FileError
from service.batches.summary import Summary
from service.batches.views import BatchLog, BatchPage, batch_list_item, batch_log
from service.common.errors import NotFoundError, NothingUsableError
from service.common.time import utcnow
from service.db import batches as batch_queries
from service.db.models import Batch
from service.gallery.gallery import Gallery
from service.metrics import ServiceMetrics
from service.recognition.faces import FaceModel
from service.recognition.photos import PhotoSource
from service.settings import Settings

NO_USABLE_PHOTO = "None of the uploaded files is a usable photo"


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """What a client asked for."""

    photos: Sequence[PhotoSource]
    domain: str
    threshold: float
    rejected_fields: int = 0  # non-file values sent in photos[]; counted as uploaded but unusable


@dataclass(frozen=True, slots=True)
class BatchRun:
    """A stored batch, its summary, and every file that could not be used."""

    batch: Batch
    summary: Summary
    errors: list[FileError]


def batch_limits(settings: Settings) -> Limits:
    """The per-photo and per-request limits of ``settings``."""
    return Limits(
        max_file_bytes=settings.max_file_bytes,
        max_image_pixels=settings.max_image_pixels,
        max_faces_per_photo=settings.max_faces_per_photo,
        max_faces_per_batch=settings.max_faces_per_batch,
        max_batch_pixels=int(settings.max_batch_megapixels * 1_000_000),
        max_decoded_side=4 * settings.det_size,  # room for a finer detection pass, no more
    )


def _not_found(batch_id: str) -> NotFoundError:
    return NotFoundError(f"Batch not found: {batch_id[:64]}")


class BatchService:
    """Batches of one database, recognised with one model against one gallery."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        model: FaceModel,
        gallery: Gallery,
        settings: Settings,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.sessions = sessions
        self.model = model
        self.gallery = gallery
        self.settings = settings
        self.metrics = metrics

    def recognize(self, request: BatchRequest) -> BatchRun:
        """Recognise every photo and store the batch atomically; :class:`NothingUsableError` (nothing stored)
        when no photo was usable."""
        started_at = utcnow()
        batch_id = new_batch_id(started_at)  # drawn now so every log line of the batch can name it
        observer: Observer | None = self.metrics
        outcome = recognize_photos(
            request.photos,
            model=self.model,
            search=lambda embeddings: self.gallery.search(request.domain, embeddings, k=3),
            threshold=request.threshold,
            limits=batch_limits(self.settings),
            log_label=f"batch={batch_id} domain={request.domain!r}",
            observer=observer,
        )
        _count_text_fields(outcome, request.rejected_fields)
        if not outcome.entries:
            raise NothingUsableError(NO_USABLE_PHOTO, outcome.errors, field="errors")
        batch, summary = store_batch(
            self.sessions,
            outcome,
            domain=request.domain,
            threshold=request.threshold,
            started_at=started_at,
            batch_id=batch_id,
        )
        if self.metrics is not None:
            self.metrics.batch()
        return BatchRun(batch=batch, summary=summary, errors=outcome.errors)

    def page(self, domain: str, limit: int, offset: int) -> BatchPage:
        """The domain's batches, newest first; ``total`` counts them all."""
        with self.sessions() as session:
            page = batch_queries.list_batches(session, domain, limit, offset)
        return BatchPage(
            success=True,
            total=page.total,
            batches=[batch_list_item(b) for b in page.batches],
            limit=limit,
            offset=offset,
        )

    def log(self, domain: str, batch_id: str) -> BatchLog:
        """A batch's summary and every entry; :class:`NotFoundError` for another domain's or no batch."""
        with self.sessions() as session:
            batch = batch_queries.get_batch(session, domain, batch_id) if is_batch_id(batch_id) else None
            if batch is None:
                raise _not_found(batch_id)
            return batch_log(batch, list(batch_queries.iter_entries(session, batch_id)))

    def export(self, domain: str, batch_id: str) -> Iterator[bytes]:
        """The spec's CSV of a batch, streamed from SQL in chunks (checked to exist before the first)."""
        with self.sessions() as session:
            found = is_batch_id(batch_id) and batch_queries.get_batch(session, domain, batch_id) is not None
        if not found:
            raise _not_found(batch_id)
        # Chunked reads, each on a connection released before the chunk goes out: a slow client pins nothing.
        return stream_csv(self.sessions, batch_id, domain)

    def delete(self, domain: str, batch_id: str) -> None:
        """Remove a batch and all its entries in one transaction."""
        with self.sessions.begin() as session:
            deleted = is_batch_id(batch_id) and batch_queries.delete_batch(session, domain, batch_id)
        if not deleted:
            raise _not_found(batch_id)


def _count_text_fields(outcome: BatchOutcome, rejected_fields: int) -> None:
    outcome.total_uploaded += rejected_fields
    outcome.errors.extend(
        FileError(filename="(not a file)", error="A photos[] value was text, not a file upload")
        for _ in range(rejected_fields)
    )
