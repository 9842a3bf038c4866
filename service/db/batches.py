"""Batch queries: atomic insert, domain-scoped reads, streamed entries, delete."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from service.db.models import Batch, BatchEntry, BatchFace, FaceCorrection


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


def list_batches(
    session: Session,
    domain: str,
    limit: int,
    offset: int,
    *,
    identity_id: int | None = None,
    person: str | None = None,
) -> BatchPage:
    """A page of the domain's batches, newest first; with ``identity_id`` or ``person`` (a name, any case),
    only the batches where that person was recognised on some face."""
    conditions: list[ColumnElement[bool]] = [Batch.domain == domain]
    if identity_id is not None or person is not None:
        face = BatchFace.batch_id == Batch.id
        who = (
            BatchFace.identity_id == identity_id
            if identity_id is not None
            else func.lower(BatchFace.person) == (person or "").lower()
        )
        conditions.append(exists().where(face, BatchFace.domain == domain, who))
    total = session.scalar(select(func.count()).select_from(Batch).where(*conditions)) or 0
    rows = session.scalars(
        select(Batch).where(*conditions).order_by(Batch.created_at.desc(), Batch.id.desc()).limit(limit).offset(offset)
    )
    return BatchPage(total=int(total), batches=list(rows))


FACE_COLUMNS = (
    BatchFace.id,
    BatchFace.entry_id,
    BatchFace.face_number,
    BatchFace.x1,
    BatchFace.y1,
    BatchFace.x2,
    BatchFace.y2,
    BatchFace.det_score,
    BatchFace.matches,
    BatchFace.quality,
    BatchFace.identity_id,
    BatchFace.person,
    BatchFace.confidence,
    BatchFace.corrected,
    BatchFace.crop.is_not(None).label("has_crop"),
)


def faces_by_entry(session: Session, batch_id: str) -> dict[int, list[Any]]:
    """Every face of a batch without its crop and embedding (FACE_COLUMNS rows), grouped by entry id, each
    entry's largest face first."""
    grouped: dict[int, list[Any]] = {}
    rows = session.execute(
        select(*FACE_COLUMNS).where(BatchFace.batch_id == batch_id).order_by(BatchFace.entry_id, BatchFace.face_number)
    )
    for row in rows:
        grouped.setdefault(row.entry_id, []).append(row)
    return grouped


def entry_at(session: Session, batch_id: str, index: int) -> BatchEntry | None:
    """The ``index``-th entry of a batch (0-based, upload order), as the batch log lists them."""
    return session.scalar(
        select(BatchEntry).where(BatchEntry.batch_id == batch_id).order_by(BatchEntry.position).offset(index).limit(1)
    )


def face_of_entry(session: Session, entry_id: int, number: int) -> BatchFace | None:
    """Face ``number`` of an entry (0 = the largest)."""
    return session.scalar(select(BatchFace).where(BatchFace.entry_id == entry_id, BatchFace.face_number == number))


def get_face(session: Session, domain: str, batch_id: str, face_id: int) -> BatchFace | None:
    """A stored batch face of this domain."""
    return session.scalar(
        select(BatchFace).where(BatchFace.id == face_id, BatchFace.batch_id == batch_id, BatchFace.domain == domain)
    )


def persons_in_order(session: Session, batch_id: str) -> list[str | None]:
    """Every face's person, in upload and face order (for the batch's persons list)."""
    return list(
        session.scalars(
            select(BatchFace.person)
            .join(BatchEntry, BatchEntry.id == BatchFace.entry_id)
            .where(BatchFace.batch_id == batch_id)
            .order_by(BatchEntry.position, BatchFace.face_number)
        )
    )


def primary_results(session: Session, batch_id: str) -> list[tuple[bool, str | None, float | None]]:
    """(recognized, primary person, primary confidence) of every entry, in upload order."""
    rows = session.execute(
        select(BatchEntry.recognized, BatchEntry.primary_person, BatchEntry.primary_confidence)
        .where(BatchEntry.batch_id == batch_id)
        .order_by(BatchEntry.position)
    )
    return [(bool(r[0]), r[1], r[2]) for r in rows]


def record_correction(session: Session, correction: FaceCorrection) -> None:
    """Keep an admin's correction of a batch face."""
    session.add(correction)


def set_primary(
    session: Session, entry_id: int, recognized: bool, person: str | None, confidence: float | None
) -> None:
    """Change an entry's primary result (after its largest face was corrected)."""
    session.execute(
        update(BatchEntry)
        .where(BatchEntry.id == entry_id)
        .values(recognized=recognized, primary_person=person, primary_confidence=confidence)
    )


def appearances(session: Session, domain: str, identity_id: int, limit: int, offset: int) -> tuple[int, list[Any]]:
    """Every batch face recognised as this person in this domain, newest first, with its batch and entry."""
    where = (BatchFace.domain == domain, BatchFace.identity_id == identity_id)
    total = session.scalar(select(func.count()).select_from(BatchFace).where(*where)) or 0
    rows = session.execute(
        select(
            BatchFace.id,
            BatchFace.batch_id,
            BatchFace.face_number,
            BatchFace.confidence,
            BatchFace.corrected,
            BatchFace.x1,
            BatchFace.y1,
            BatchFace.x2,
            BatchFace.y2,
            BatchFace.crop.is_not(None).label("has_crop"),
            BatchEntry.filename,
            BatchEntry.timestamp,
        )
        .join(BatchEntry, BatchEntry.id == BatchFace.entry_id)
        .where(*where)
        .order_by(BatchEntry.timestamp.desc(), BatchFace.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return int(total), list(rows)


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
    # Children first, explicitly: SQLite enforces ON DELETE CASCADE only with foreign keys switched on.
    session.execute(delete(FaceCorrection).where(FaceCorrection.batch_id == batch_id))
    session.execute(delete(BatchFace).where(BatchFace.batch_id == batch_id))
    session.execute(delete(BatchEntry).where(BatchEntry.batch_id == batch_id))
    session.execute(delete(Batch).where(Batch.id == batch_id, Batch.domain == domain))
    return True


FACE_EXPORT_COLUMNS = (
    BatchEntry.timestamp,
    BatchEntry.filename,
    BatchFace.face_number,
    BatchFace.x1,
    BatchFace.y1,
    BatchFace.x2,
    BatchFace.y2,
    BatchFace.person,
    BatchFace.confidence,
    BatchFace.matches,
    BatchFace.corrected,
)


def face_export_page(session: Session, batch_id: str, after: int | None, limit: int) -> tuple[list[Any], int | None]:
    """The next ``limit`` faces of a batch (FACE_EXPORT_COLUMNS) in upload and face order, after face id
    ``after`` (faces are stored in that order, so their ids follow it); and the id to continue after."""
    query = (
        select(BatchFace.id, *FACE_EXPORT_COLUMNS)
        .join(BatchEntry, BatchEntry.id == BatchFace.entry_id)
        .where(BatchFace.batch_id == batch_id)
        .order_by(BatchFace.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(BatchFace.id > after)
    rows = session.execute(query).all()
    return [tuple(row[1:]) for row in rows], (rows[-1][0] if rows else None)


def unknown_faces(
    session: Session,
    domain: str,
    *,
    batch_ids: list[str] | None = None,
    since: datetime | None = None,
    limit: int,
    dismissed: bool = False,
) -> list[Any]:
    """The domain's unrecognised batch faces that kept an embedding, newest first (at most ``limit``), with
    their batch, entry and stored quality; optionally only of some batches or since a time. ``dismissed``
    selects the faces left out of grouping instead of the ones grouped."""
    query = (
        select(
            BatchFace.id,
            BatchFace.batch_id,
            BatchFace.face_number,
            BatchFace.embedding,
            BatchFace.quality,
            BatchFace.crop.is_not(None).label("has_crop"),
            BatchEntry.filename,
            BatchEntry.position,
            BatchEntry.timestamp,
        )
        .join(BatchEntry, BatchEntry.id == BatchFace.entry_id)
        .where(
            BatchFace.domain == domain,
            BatchFace.identity_id.is_(None),
            BatchFace.embedding.is_not(None),
            BatchFace.dismissed.is_(dismissed),
        )
        .order_by(BatchEntry.timestamp.desc(), BatchFace.id.desc())
        .limit(limit)
    )
    if batch_ids is not None:
        query = query.where(BatchFace.batch_id.in_(batch_ids))
    if since is not None:
        query = query.where(BatchEntry.timestamp >= since)
    return list(session.execute(query).all())


def faces_by_id(session: Session, domain: str, face_ids: list[int]) -> list[BatchFace]:
    """Batch faces of this domain by id (ids of other domains or none are left out)."""
    return list(session.scalars(select(BatchFace).where(BatchFace.domain == domain, BatchFace.id.in_(face_ids))))


def entry_index(session: Session, entry: BatchEntry) -> int:
    """An entry's index in its batch log's ``entries`` (upload order)."""
    before = session.scalar(
        select(func.count())
        .select_from(BatchEntry)
        .where(BatchEntry.batch_id == entry.batch_id, BatchEntry.position < entry.position)
    )
    return int(before or 0)


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What pruning batches older than a time removes (or would)."""

    batches: int
    entries: int
    faces: int
    bytes: int  # stored crops and embeddings


def batches_before(session: Session, cutoff: datetime, domain: str | None = None) -> list[str]:
    """Ids of the batches created before ``cutoff`` (of one domain, or all), oldest first."""
    query = select(Batch.id).where(Batch.created_at < cutoff).order_by(Batch.created_at, Batch.id)
    if domain is not None:
        query = query.where(Batch.domain == domain)
    return list(session.scalars(query))


def prune_report(session: Session, batch_ids: list[str]) -> PruneReport:
    """How much the given batches hold."""
    if not batch_ids:
        return PruneReport(0, 0, 0, 0)
    entries = session.scalar(select(func.count()).select_from(BatchEntry).where(BatchEntry.batch_id.in_(batch_ids)))
    faces, size = session.execute(
        select(
            func.count(),
            func.coalesce(
                func.sum(
                    func.coalesce(func.length(BatchFace.crop), 0) + func.coalesce(func.length(BatchFace.embedding), 0)
                ),
                0,
            ),
        ).where(BatchFace.batch_id.in_(batch_ids))
    ).one()
    return PruneReport(len(batch_ids), int(entries or 0), int(faces), int(size))


def delete_batch_by_id(session: Session, batch_id: str) -> bool:
    """Delete a batch of any domain with its entries, faces and corrections; False if it is already gone."""
    domain = session.scalar(select(Batch.domain).where(Batch.id == batch_id))
    return domain is not None and delete_batch(session, domain, batch_id)


REDACTED = "[erased]"


@dataclass(slots=True)
class Redaction:
    """What erasing a person changed in the batches."""

    faces: int = 0  # batch faces that were theirs: crop and embedding removed, name redacted
    matches: int = 0  # other faces whose top matches named them
    entries: int = 0
    batches: int = 0


def redact_person(session: Session, domain: str, identity_id: int, name: str) -> Redaction:
    """Remove a person from every batch of the domain: the crops and embeddings of their faces, and their name
    wherever it was recorded (faces, matches, the spec's columns, persons lists, corrections). Counts stay."""
    done = Redaction()
    entry_ids: set[int] = set()
    batch_ids: set[str] = set()
    faces = session.scalars(select(BatchFace).where(BatchFace.domain == domain).execution_options(yield_per=500))
    for face in faces:
        changed = False
        if face.identity_id == identity_id:
            face.crop, face.embedding, face.identity_id, face.person = None, None, None, REDACTED
            done.faces += 1
            changed = True
        matches = [dict(m) for m in (face.matches or [])]
        named = [m for m in matches if m.get("identity_id") == identity_id or m.get("person") == name]
        if named:
            for match in named:
                match["person"], match["identity_id"] = REDACTED, None
            face.matches = matches
            done.matches += 1
            changed = True
        if changed:
            entry_ids.add(face.entry_id)
            batch_ids.add(face.batch_id)
    entries = session.scalars(
        select(BatchEntry)
        .join(Batch, Batch.id == BatchEntry.batch_id)
        .where(
            Batch.domain == domain,
            or_(
                BatchEntry.id.in_(entry_ids),
                BatchEntry.primary_person == name,
                BatchEntry.match1_person == name,
                BatchEntry.match2_person == name,
                BatchEntry.match3_person == name,
            ),
        )
    )
    for entry in entries:
        first = session.scalar(select(BatchFace).where(BatchFace.entry_id == entry.id, BatchFace.face_number == 0))
        ranked = [m.get("person") for m in (first.matches if first is not None else [])][:3]
        for column, rank in (("match1_person", 0), ("match2_person", 1), ("match3_person", 2)):
            if getattr(entry, column) == name or (
                rank < len(ranked) and ranked[rank] == REDACTED and getattr(entry, column)
            ):
                setattr(entry, column, REDACTED)
        if entry.primary_person == name or (first is not None and first.person == REDACTED and entry.recognized):
            entry.primary_person = REDACTED
        done.entries += 1
        batch_ids.add(entry.batch_id)
    for batch in session.scalars(select(Batch).where(Batch.domain == domain, Batch.id.in_(batch_ids))):
        batch.persons_list = [REDACTED if person == name else person for person in batch.persons_list]
    done.batches = len(batch_ids)
    session.execute(
        update(FaceCorrection)
        .where(FaceCorrection.domain == domain, FaceCorrection.old_identity_id == identity_id)
        .values(old_person=REDACTED)
    )
    session.execute(
        update(FaceCorrection)
        .where(FaceCorrection.domain == domain, FaceCorrection.new_identity_id == identity_id)
        .values(new_person=REDACTED)
    )
    return done
