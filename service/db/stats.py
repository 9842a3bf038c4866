"""What is stored, per domain: counts and the bytes of the biometric data (embeddings, crops, thumbnails)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from service.db.models import Batch, BatchEntry, BatchFace, Face, Identity


@dataclass(slots=True)
class DomainStats:
    """One domain's stored data."""

    domain: str
    batches: int = 0
    entries: int = 0
    batch_faces: int = 0
    batch_face_bytes: int = 0  # crops and embeddings kept with batches
    people: int = 0
    gallery_faces: int = 0
    gallery_bytes: int = 0  # enrolled embeddings and thumbnails


def _size(column: InstrumentedAttribute[bytes] | InstrumentedAttribute[bytes | None]) -> ColumnElement[int]:
    return func.coalesce(func.sum(func.coalesce(func.length(column), 0)), 0)


def domain_stats(session: Session, domain: str | None = None) -> list[DomainStats]:
    """Counts and sizes per domain (every domain, or one), by domain name."""
    found: dict[str, DomainStats] = {}

    def of(name: str) -> DomainStats:
        return found.setdefault(name, DomainStats(name))

    def only(column: InstrumentedAttribute[str]) -> list[ColumnElement[bool]]:
        return [column == domain] if domain is not None else []

    batches = select(Batch.domain, func.count()).where(*only(Batch.domain)).group_by(Batch.domain)
    for name, count in session.execute(batches):
        of(name).batches = int(count)
    entries = (
        select(Batch.domain, func.count())
        .join(BatchEntry, BatchEntry.batch_id == Batch.id)
        .where(*only(Batch.domain))
        .group_by(Batch.domain)
    )
    for name, count in session.execute(entries):
        of(name).entries = int(count)
    faces = (
        select(BatchFace.domain, func.count(), _size(BatchFace.crop), _size(BatchFace.embedding))
        .where(*only(BatchFace.domain))
        .group_by(BatchFace.domain)
    )
    for name, count, crops, vectors in session.execute(faces):
        of(name).batch_faces, of(name).batch_face_bytes = int(count), int(crops) + int(vectors)
    people = select(Identity.domain, func.count()).where(*only(Identity.domain)).group_by(Identity.domain)
    for name, count in session.execute(people):
        of(name).people = int(count)
    gallery = (
        select(Face.domain, func.count(), _size(Face.embedding), _size(Face.thumbnail))
        .where(*only(Face.domain))
        .group_by(Face.domain)
    )
    for name, count, vectors, thumbs in session.execute(gallery):
        of(name).gallery_faces, of(name).gallery_bytes = int(count), int(vectors) + int(thumbs)
    if domain is not None and domain not in found:
        found[domain] = DomainStats(domain)
    return [found[name] for name in sorted(found)]
