"""Store a batch outcome atomically and read stored batches back as summaries."""

from __future__ import annotations

import logging
from datetime import datetime

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.batches.ids import new_batch_id
from service.batches.results import BatchOutcome, EntryResult, RankedMatch
from service.batches.summary import Summary, summarize
from service.db.batches import insert_batch
from service.db.models import Batch, BatchEntry

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
        faces=msgspec.to_builtins(entry.faces),
    )


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
    summary = summarize([(e.recognized, e.primary_person, e.primary_confidence) for e in outcome.entries])
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
                insert_batch(session, batch, [_entry_row(entry) for entry in outcome.entries])
        except IntegrityError:
            with sessions() as session:
                if session.get(Batch, batch.id) is None:
                    raise  # not an id clash: a real constraint violation
            logger.info("batch id %s already taken; drawing another", batch.id)
            continue
        return batch, summary
    raise RuntimeError("could not allocate a unique batch id")
