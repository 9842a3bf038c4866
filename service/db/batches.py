"""Batch queries: atomic insert, domain-scoped reads, streamed entries, delete."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from service.db.models import Batch, BatchEntry


@dataclass(frozen=True, slots=True)
class BatchPage:
    """One page of a domain's batches, newest first, and how many there are in all."""

    total: int
    batches: list[Batch]


def insert_batch(session: Session, batch: Batch, entries: list[BatchEntry]) -> None:
    """Add a batch and all its entries; the caller's transaction makes it all-or-nothing."""
    session.add(batch)
    session.flush()
    for entry in entries:
        entry.batch_id = batch.id
    session.add_all(entries)
    session.flush()


def get_batch(session: Session, domain: str, batch_id: str) -> Batch | None:
    """A batch of this domain, or None (another domain's batch is as good as missing)."""
    return session.scalar(select(Batch).where(Batch.id == batch_id, Batch.domain == domain))


def list_batches(session: Session, domain: str, limit: int, offset: int) -> BatchPage:
    """A page of the domain's batches, newest first."""
    total = session.scalar(select(func.count()).select_from(Batch).where(Batch.domain == domain)) or 0
    rows = session.scalars(
        select(Batch)
        .where(Batch.domain == domain)
        .order_by(Batch.created_at.desc(), Batch.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return BatchPage(total=int(total), batches=list(rows))


def iter_entries(session: Session, batch_id: str, chunk: int = 1000) -> Iterator[BatchEntry]:
    """A batch's entries in upload order, fetched from SQL in chunks (memory does not grow with the batch)."""
    result = session.scalars(
        select(BatchEntry)
        .where(BatchEntry.batch_id == batch_id)
        .order_by(BatchEntry.position)
        .execution_options(yield_per=chunk)
    )
    yield from result


EXPORT_COLUMNS = (
    BatchEntry.timestamp,
    BatchEntry.filename,
    BatchEntry.recognized,
    BatchEntry.primary_person,
    BatchEntry.primary_confidence,
    BatchEntry.match1_person,
    BatchEntry.match1_confidence,
    BatchEntry.match2_person,
    BatchEntry.match2_confidence,
    BatchEntry.match3_person,
    BatchEntry.match3_confidence,
    BatchEntry.face_count,
    BatchEntry.processing_time_ms,
)


def iter_export_rows(session: Session, batch_id: str, chunk: int = 2000) -> Iterator[tuple[Any, ...]]:
    """The flat columns the CSV needs (EXPORT_COLUMNS order), as plain rows in upload order.

    Runs on the session's connection (Core, not the ORM loader) and streams in chunks: no entity objects,
    no JSON decoding, and memory does not grow with the batch.
    """
    result = session.connection().execute(
        select(*EXPORT_COLUMNS)
        .where(BatchEntry.batch_id == batch_id)
        .order_by(BatchEntry.position)
        .execution_options(yield_per=chunk)
    )
    yield from result


@dataclass(frozen=True, slots=True)
class ExportPage:
    """Up to one chunk of export rows, and the keyset position after its last row (None when empty)."""

    rows: list[tuple[Any, ...]]
    after: tuple[int, int] | None


def export_page(session: Session, batch_id: str, after: tuple[int, int] | None, limit: int) -> ExportPage:
    """The next ``limit`` export rows (EXPORT_COLUMNS) in upload order, after keyset ``(position, id)``.

    Keyset rather than OFFSET: each page is an index range scan from where the last one stopped, however far
    into the batch, and rows are neither skipped nor repeated across pages. ``id`` breaks ties between equal
    positions.
    """
    query = (
        select(BatchEntry.position, BatchEntry.id, *EXPORT_COLUMNS)
        .where(BatchEntry.batch_id == batch_id)
        .order_by(BatchEntry.position, BatchEntry.id)
        .limit(limit)
    )
    if after is not None:
        position, entry_id = after
        # ``position >= p`` bounds the index scan; the OR only sorts out rows that share position p.
        query = query.where(
            BatchEntry.position >= position, or_(BatchEntry.position > position, BatchEntry.id > entry_id)
        )
    rows = session.connection().execute(query).all()
    if not rows:
        return ExportPage([], None)
    return ExportPage([tuple(row[2:]) for row in rows], (rows[-1][0], rows[-1][1]))


def delete_batch(session: Session, domain: str, batch_id: str) -> bool:
    """Delete a batch of this domain and all its entries; False if there is none."""
    if get_batch(session, domain, batch_id) is None:
        return False
    session.execute(delete(BatchEntry).where(BatchEntry.batch_id == batch_id))
    session.execute(delete(Batch).where(Batch.id == batch_id, Batch.domain == domain))
    return True
