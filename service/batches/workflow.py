"""One batch from upload to storage: the unit of work the runner executes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from service.batches.ids import new_batch_id
from service.batches.pipeline import Limits, Observer, recognize_photos
from service.batches.recording import store_batch
from service.batches.results import BatchOutcome, FileError
from service.batches.summary import Summary, summarize
from service.common.time import utcnow
from service.db.models import Batch
from service.gallery.gallery import Gallery
from service.recognition.faces import FaceModel
from service.recognition.photos import PhotoSource
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """What a client asked for."""

    photos: Sequence[PhotoSource]
    domain: str
    threshold: float
    rejected_fields: int = 0  # non-file values sent in photos[]; counted as uploaded but unusable


@dataclass(frozen=True, slots=True)
class BatchRun:
    """The outcome, and the stored batch unless no photo was usable."""

    outcome: BatchOutcome
    batch: Batch | None
    summary: Summary


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


def run_batch(
    request: BatchRequest,
    model: FaceModel,
    gallery: Gallery,
    sessions: sessionmaker[Session],
    settings: Settings,
    observer: Observer | None = None,
) -> BatchRun:
    """Recognise every photo and store the batch atomically (nothing is stored if no photo was usable)."""
    started_at = utcnow()
    batch_id = new_batch_id(started_at)  # drawn now so every log line of the batch can name it
    outcome = recognize_photos(
        request.photos,
        model=model,
        search=lambda embeddings: gallery.search(request.domain, embeddings, k=3),
        threshold=request.threshold,
        limits=batch_limits(settings),
        log_label=f"batch={batch_id} domain={request.domain!r}",
        observer=observer,
    )
    outcome.total_uploaded += request.rejected_fields
    outcome.errors.extend(
        FileError(filename="(not a file)", error="A photos[] value was text, not a file upload")
        for _ in range(request.rejected_fields)
    )
    if not outcome.entries:
        return BatchRun(outcome=outcome, batch=None, summary=summarize([]))
    batch, summary = store_batch(
        sessions, outcome, domain=request.domain, threshold=request.threshold, started_at=started_at, batch_id=batch_id
    )
    return BatchRun(outcome=outcome, batch=batch, summary=summary)
