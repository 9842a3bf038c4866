"""Identity and face queries, always scoped to a domain."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from service.common.names import name_key
from service.db.models import Face, Identity


@dataclass(frozen=True, slots=True)
class IdentityRow:
    """An identity with its number of faces and its newest face (for a thumbnail)."""

    identity: Identity
    face_count: int
    newest_face_id: int | None = None


def get_identity(session: Session, domain: str, identity_id: int) -> Identity | None:
    """An identity of this domain, or None."""
    return session.scalar(select(Identity).where(Identity.id == identity_id, Identity.domain == domain))


def lock_identity(session: Session, domain: str, identity_id: int) -> Identity | None:
    """An identity of this domain locked until the transaction ends (``FOR UPDATE``), or None.

    Every change to a person's faces takes this lock first, so adding photos, deleting faces and
    deleting the person run one after another: a face is never inserted under a person whose deletion
    has already listed the faces it removes. (SQLite has no row locks; it serialises writers anyway.)
    """
    return session.scalar(
        select(Identity).where(Identity.id == identity_id, Identity.domain == domain).with_for_update()
    )


def find_by_name(session: Session, domain: str, name: str) -> Identity | None:
    """The identity of the domain with this name in any case, spacing or Unicode-compatible form, or None."""
    return session.scalar(select(Identity).where(Identity.domain == domain, Identity.name_key == name_key(name)))


def face_count(session: Session, identity_id: int) -> int:
    """How many faces an identity has."""
    return int(session.scalar(select(func.count()).select_from(Face).where(Face.identity_id == identity_id)) or 0)


def list_identities(
    session: Session, domain: str, limit: int, offset: int, query: str | None
) -> tuple[int, list[IdentityRow]]:
    """A page of the domain's identities by name, optionally filtered by a case-insensitive substring."""
    where = [Identity.domain == domain]
    if query:
        escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(func.lower(Identity.name).like(f"%{escaped}%", escape="\\"))
    total = session.scalar(select(func.count()).select_from(Identity).where(*where)) or 0
    # One query for the page: face counts and newest face ids of this domain's faces only, no face rows loaded.
    counts = (
        select(Face.identity_id, func.count(Face.id).label("n"), func.max(Face.id).label("newest"))
        .where(Face.domain == domain)
        .group_by(Face.identity_id)
        .subquery()
    )
    rows = session.execute(
        select(Identity, func.coalesce(counts.c.n, 0), counts.c.newest)
        .outerjoin(counts, counts.c.identity_id == Identity.id)
        .where(*where)
        .order_by(Identity.name_key, Identity.id)
        .limit(limit)
        .offset(offset)
    )
    return int(total), [IdentityRow(identity, int(n), newest) for identity, n, newest in rows]


def faces_of(session: Session, identity_id: int) -> list[Face]:
    """An identity's faces, oldest first."""
    return list(session.scalars(select(Face).where(Face.identity_id == identity_id).order_by(Face.id)))


def content_hashes(session: Session, identity_id: int) -> dict[str, int]:
    """Content hash -> face id of an identity's enrolled photos."""
    rows = session.execute(select(Face.content_sha256, Face.id).where(Face.identity_id == identity_id))
    return {digest: face_id for digest, face_id in rows}


def get_face(session: Session, domain: str, identity_id: int, face_id: int) -> Face | None:
    """One face of one identity of this domain, or None."""
    return session.scalar(
        select(Face).where(Face.id == face_id, Face.identity_id == identity_id, Face.domain == domain)
    )


def delete_face_row(session: Session, domain: str, identity_id: int, face_id: int) -> bool:
    """Delete one face of one identity of this domain; False if there was no such face."""
    deleted = session.scalars(
        delete(Face)
        .where(Face.id == face_id, Face.identity_id == identity_id, Face.domain == domain)
        .returning(Face.id)
        .execution_options(synchronize_session=False)
    ).all()
    return bool(deleted)


def delete_identity_rows(session: Session, identity_id: int) -> list[int]:
    """Delete an identity and its faces; returns the ids of the faces actually deleted.

    The ids come from the DELETE itself (``RETURNING``), not from an earlier SELECT: a face committed
    in between is deleted *and* reported, so the caller logs every removal (``ON DELETE CASCADE``
    would remove such a face silently, leaving it in every search index).
    """
    face_ids = session.scalars(
        delete(Face)
        .where(Face.identity_id == identity_id)
        .returning(Face.id)
        .execution_options(synchronize_session=False)
    ).all()
    session.execute(delete(Identity).where(Identity.id == identity_id).execution_options(synchronize_session=False))
    return sorted(face_ids)
