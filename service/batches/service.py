"""The batch use cases — recognise and store, list, read, export, delete — for the API and the CLI alike.

:class:`BatchService` owns the sessions and transactions; callers parse their input, call it and show the
result. Client mistakes are raised as :mod:`service.common.errors`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from service.batches.export import stream_csv, stream_faces_csv
from service.batches.ids import is_batch_id, new_batch_id
from service.batches.pipeline import Limits, Observer, recognize_photos
from service.batches.recording import store_batch
from service.batches.results import BatchOutcome, FileError
from service.batches.summary import Summary, summarize
from service.batches.views import (
    Appearances,
    BatchLog,
    BatchPage,
    EntryView,
    appearance,
    batch_list_item,
    batch_log,
    entry_view,
)
from service.common.errors import InvalidInputError, NotFoundError, NothingUsableError
from service.common.time import utcnow
from service.db import batches as batch_queries
from service.db import identities as identity_queries
from service.db.gallery import embedding_from_bytes
from service.db.models import Batch, BatchEntry, BatchFace, FaceCorrection, Identity
from service.gallery.enrollment import PreparedFace, enroll
from service.gallery.gallery import Gallery
from service.metrics import ServiceMetrics
from service.recognition.confidence import rounded_confidence
from service.recognition.faces import FaceModel
from service.recognition.photos import PhotoSource
from service.settings import Settings

NO_USABLE_PHOTO = "None of the uploaded files is a usable photo"
EXPORT_ROWS = ("photos", "faces")
logger = logging.getLogger("service.batches")


@dataclass(frozen=True, slots=True)
class Correction:
    """An admin's decision about a stored face: who it is (None = Unknown), and whether it joins their gallery."""

    identity_id: int | None
    add_to_gallery: bool = False
    token_id: int | None = None  # who decided (None: not through the API)


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
            keep_faces=self.settings.keep_batch_faces,
            quality=self.settings.recognition_quality,
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

    def page(self, domain: str, limit: int, offset: int, person: str | None = None) -> BatchPage:
        """The domain's batches, newest first; ``total`` counts them all. ``person`` (a person's id, or a name
        in any case) keeps the batches where they were recognised on any face."""
        identity_id, name = _person_filter(person)
        with self.sessions() as session:
            if name is not None:
                found = identity_queries.find_by_name(session, domain, name)
                identity_id, name = (found.id, None) if found is not None else (None, name)
            page = batch_queries.list_batches(session, domain, limit, offset, identity_id=identity_id, person=name)
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
            entries = list(batch_queries.iter_entries(session, batch_id))
            return batch_log(batch, entries, batch_queries.faces_by_entry(session, batch_id))

    def export(self, domain: str, batch_id: str, rows: str = "photos") -> Iterator[bytes]:
        """A batch as CSV streamed from SQL in chunks (checked to exist before the first): the spec's one row
        per photo, or with ``rows="faces"`` one row per recognised face."""
        if rows not in EXPORT_ROWS:
            raise InvalidInputError(f"rows must be one of {', '.join(EXPORT_ROWS)} (got {rows[:20]!r})")
        with self.sessions() as session:
            found = is_batch_id(batch_id) and batch_queries.get_batch(session, domain, batch_id) is not None
        if not found:
            raise _not_found(batch_id)
        # Chunked reads, each on a connection released before the chunk goes out: a slow client pins nothing.
        if rows == "faces":
            return stream_faces_csv(self.sessions, batch_id)
        return stream_csv(self.sessions, batch_id, domain)

    def crop(self, domain: str, batch_id: str, face_id: int) -> bytes:
        """A stored batch face's aligned crop (JPEG)."""
        with self.sessions() as session:
            face = batch_queries.get_face(session, domain, batch_id, face_id) if is_batch_id(batch_id) else None
            if face is None or face.crop is None:
                raise NotFoundError(f"Face {face_id} of batch {batch_id[:64]} not found")
            return face.crop

    def appearances(self, domain: str, identity_id: int, limit: int, offset: int) -> Appearances:
        """Every batch face recognised as this person, newest first."""
        with self.sessions() as session:
            if identity_queries.get_identity(session, domain, identity_id) is None:
                raise NotFoundError(f"Identity {identity_id} not found")
            total, rows = batch_queries.appearances(session, domain, identity_id, limit, offset)
        return Appearances(
            success=True,
            total=total,
            appearances=[appearance(row) for row in rows],
            limit=limit,
            offset=offset,
        )

    def correct_face(
        self, domain: str, batch_id: str, entry_index: int, face_number: int, change: Correction
    ) -> EntryView:
        """Decide who a stored face is (``change.identity_id``; None = Unknown): the face, the entry's primary
        result when it is the largest face, and the batch summary change together, and the correction is
        recorded. With ``change.add_to_gallery`` the face's stored embedding joins the person's gallery."""
        with self.sessions() as session:
            batch = batch_queries.get_batch(session, domain, batch_id) if is_batch_id(batch_id) else None
            if batch is None:
                raise _not_found(batch_id)
            entry = batch_queries.entry_at(session, batch_id, entry_index)
            face = batch_queries.face_of_entry(session, entry.id, face_number) if entry is not None else None
            if entry is None or face is None:
                raise NotFoundError(f"Face {face_number} of entry {entry_index} of batch {batch_id} not found")
            identity = None
            if change.identity_id is not None:
                identity = identity_queries.get_identity(session, domain, change.identity_id)
                if identity is None:
                    raise NotFoundError(f"Identity {change.identity_id} not found")
            if change.add_to_gallery and (identity is None or face.embedding is None or face.crop is None):
                raise InvalidInputError(
                    "add_to_gallery needs a person (identity_id) and the face's stored crop and embedding "
                    "(FACEREC_KEEP_BATCH_FACES was off when the batch was recognised)"
                    if identity is not None
                    else "add_to_gallery needs a person: give identity_id"
                )
            face_id, filename = face.id, entry.filename
            embedding, crop, det_score = face.embedding, face.crop, face.det_score
            # Before the face may join their gallery: afterwards it would match itself.
            confidence = _confidence_for(session, face, identity.id) if identity is not None else None
        added = None
        if change.add_to_gallery and identity is not None and embedding is not None and crop is not None:
            added = self._add_to_gallery(domain, identity.id, face_id, filename, embedding, crop, det_score)
        with self.sessions.begin() as session:
            face = batch_queries.get_face(session, domain, batch_id, face_id)
            if face is None:  # the batch was deleted meanwhile
                raise _not_found(batch_id)
            entry = session.get(BatchEntry, face.entry_id)
            assert entry is not None
            before = face.person
            relabel(session, face, identity, confidence, change.token_id, added)
            session.flush()
            refresh_summary(session, batch_id)
            logger.info(
                "face corrected batch=%s entry=%d face=%d from=%r to=%r token=%s",
                batch_id, entry_index, face_number, before, face.person, change.token_id,
            )  # fmt: skip
        with self.sessions() as session:
            batch = batch_queries.get_batch(session, domain, batch_id)
            entry = batch_queries.entry_at(session, batch_id, entry_index)
            assert batch is not None
            assert entry is not None
            return entry_view(entry, batch, batch_queries.faces_by_entry(session, batch_id).get(entry.id, []))

    def _add_to_gallery(
        self,
        domain: str,
        identity_id: int,
        face_id: int,
        filename: str,
        embedding: bytes,
        crop: bytes,
        det_score: float,
    ) -> int | None:
        prepared = PreparedFace(
            filename=filename,
            embedding=embedding_from_bytes(embedding),
            det_score=det_score,
            content_sha256=hashlib.sha256(f"batch-face:{face_id}".encode()).hexdigest(),
            thumbnail=crop,
            note=None,
        )
        result = enroll(self.gallery, domain, [prepared], [], model_name=self.model.name, identity_id=identity_id)
        return result.enrolled[0].face_id if result.enrolled else None

    def delete(self, domain: str, batch_id: str) -> None:
        """Remove a batch and all its entries in one transaction."""
        with self.sessions.begin() as session:
            deleted = is_batch_id(batch_id) and batch_queries.delete_batch(session, domain, batch_id)
        if not deleted:
            raise _not_found(batch_id)


def _person_filter(person: str | None) -> tuple[int | None, str | None]:
    """A ``person`` filter as (identity id, None) when it is a number, else (None, the name)."""
    if person is None or not person.strip():
        return None, None
    text = person.strip()
    return (int(text), None) if text.isdigit() and len(text) < 10 else (None, text)


def _confidence_for(session: Session, face: BatchFace, identity_id: int) -> float | None:
    """How confident a face is someone: the model's match when they were among its top 3, else the similarity
    of its stored embedding to their closest gallery face; None when neither is known."""
    for match in face.matches or []:
        if match.get("identity_id") == identity_id:
            return float(match["confidence"])
    if face.embedding is None:
        return None
    gallery = [embedding_from_bytes(f.embedding) for f in identity_queries.faces_of(session, identity_id)]
    if not gallery:
        return None
    similarity = float(np.max(np.vstack(gallery) @ embedding_from_bytes(face.embedding)))
    return rounded_confidence(similarity)


def relabel(
    session: Session,
    face: BatchFace,
    identity: Identity | None,
    confidence: float | None,
    token_id: int | None,
    added_face_id: int | None = None,
) -> None:
    """Decide who a stored face is, recording the correction; the entry's primary result follows its largest
    face. The caller refreshes the batch summary."""
    batch_queries.record_correction(
        session,
        FaceCorrection(
            batch_id=face.batch_id,
            face_id=face.id,
            domain=face.domain,
            token_id=token_id,
            old_identity_id=face.identity_id,
            old_person=face.person,
            new_identity_id=identity.id if identity else None,
            new_person=identity.name if identity else None,
            added_face_id=added_face_id,
        ),
    )
    face.identity_id = identity.id if identity else None
    face.person = identity.name if identity else None
    face.confidence = confidence
    face.corrected = True
    if face.face_number == 0:
        batch_queries.set_primary(session, face.entry_id, identity is not None, face.person, confidence)


def refresh_summary(session: Session, batch_id: str) -> None:
    """Recompute a batch's stored summary figures from its entries and faces (after a correction)."""
    summary = summarize(
        batch_queries.primary_results(session, batch_id), batch_queries.persons_in_order(session, batch_id)
    )
    batch = session.get(Batch, batch_id)
    assert batch is not None
    batch.recognized_count = summary.recognized_count
    batch.avg_confidence = summary.avg_confidence if summary.recognized_count else None
    batch.persons_list = summary.persons_list


def _count_text_fields(outcome: BatchOutcome, rejected_fields: int) -> None:
    outcome.total_uploaded += rejected_fields
    outcome.errors.extend(
        FileError(filename="(not a file)", error="A photos[] value was text, not a file upload")
        for _ in range(rejected_fields)
    )
