"""Store a batch outcome atomically and read stored batches back as summaries."""

from __future__ import annotations

import logging
from datetime import datetime

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.batches.ids import new_batch_id
from service.batches.results import BatchOutcome, EntryResult, RankedMatch, decide
from service.batches.summary import Summary, summarize
from service.db.batches import insert_batch
from service.db.gallery import embedding_to_bytes
from service.db.models import Batch, BatchEntry, BatchFace

logger = logging.getLogger("service.batches")
MAX_ID_ATTEMPTS = 20


def _entry_row(entry: EntryResult) -> BatchEntry:
    matches: list[RankedMatch | None] = [*entry.top_3, None, None, None]
    return BatchEntry(
        position=entry.position,
        timestamp=entry.timestamp,
        filename=entry.filename,
        recognized=entry.recognized,
        primary_person=entry.primary_person,
        primary_confidence=entry.primary_confidence,
        match1_person=matches[0].person if matches[0] else None,
        match1_confidence=matches[0].confidence if matches[0] else None,
        match2_person=matches[1].person if matches[1] else None,
        match2_confidence=matches[1].confidence if matches[1] else None,
        match3_person=matches[2].person if matches[2] else None,
        match3_confidence=matches[2].confidence if matches[2] else None,
        face_count=entry.face_count,
        processing_time_ms=entry.processing_time_ms,
        detection=entry.detection or None,
        faces=[],  # every face is a batch_faces row
    )


def face_decision(entry: EntryResult, number: int, threshold: float) -> RankedMatch | None:
    """Who face ``number`` of an entry is: the spec's primary result for the largest face, else its best match
    at the threshold."""
    if number == 0:
        return entry.top_3[0] if entry.recognized and entry.top_3 else None
    return decide(entry.faces[number], threshold)


def _face_rows(entry: EntryResult, row: BatchEntry, domain: str, threshold: float) -> list[BatchFace]:
    faces = []
    for number, face in enumerate(entry.faces):
        decided = face_decision(entry, number, threshold)
        faces.append(
            BatchFace(
                batch_id=row.batch_id,
                entry_id=row.id,
                domain=domain,
                face_number=number,
                x1=face.box[0],
                y1=face.box[1],
                x2=face.box[2],
                y2=face.box[3],
                det_score=face.det_score,
                matches=msgspec.to_builtins(face.matches),
                quality=msgspec.to_builtins(face.quality) if face.quality is not None else None,
                identity_id=decided.identity_id if decided else None,
                person=decided.person if decided else None,
                confidence=decided.confidence if decided else None,
                corrected=False,
                dismissed=False,
                crop=entry.crops[number] if entry.crops is not None else None,
                embedding=embedding_to_bytes(entry.embeddings[number]) if entry.embeddings is not None else None,
            )
        )
    return faces


def _persons_seen(outcome: BatchOutcome, threshold: float) -> list[str | None]:
    return [
        decided.person if (decided := face_decision(entry, number, threshold)) else None
        for entry in outcome.entries
        for number in range(len(entry.faces))
    ]


def store_batch(
    sessions: sessionmaker[Session],
    outcome: BatchOutcome,
    *,
    domain: str,
    threshold: float,
    started_at: datetime,
    batch_id: str | None = None,
) -> tuple[Batch, Summary]:
    """Write the batch and every entry in one transaction under ``batch_id`` (drawn if not given); another id
    is drawn if that one is taken."""
    summary = summarize(
        [(e.recognized, e.primary_person, e.primary_confidence) for e in outcome.entries],
        _persons_seen(outcome, threshold),
    )
    for attempt in range(MAX_ID_ATTEMPTS):
        batch = Batch(
            id=batch_id if batch_id and attempt == 0 else new_batch_id(started_at),
            domain=domain,
            created_at=started_at,
            threshold=threshold,
            total_uploaded=outcome.total_uploaded,
            total_processed=len(outcome.entries),
            recognized_count=summary.recognized_count,
            avg_confidence=summary.avg_confidence if summary.recognized_count else None,
            persons_list=summary.persons_list,
            errors=msgspec.to_builtins(outcome.errors),
        )
        try:
            with sessions.begin() as session:
                rows = [_entry_row(entry) for entry in outcome.entries]
                insert_batch(session, batch, rows)
                session.add_all(
                    face
                    for entry, row in zip(outcome.entries, rows, strict=True)
                    for face in _face_rows(entry, row, domain, threshold)
                )
                session.flush()
        except IntegrityError:
            with sessions() as session:
                if session.get(Batch, batch.id) is None:
                    raise  # not an id clash: a real constraint violation
            logger.info("batch id %s already taken; drawing another", batch.id)
            continue
        return batch, summary
    raise RuntimeError("could not allocate a unique batch id")
