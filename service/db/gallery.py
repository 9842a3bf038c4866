"""Gallery queries: gallery versions and stored embeddings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from sqlalchemy import insert as insert_rows
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.db.models import Face, GalleryChange, Identity, IndexState

EMBEDDING_DTYPE = np.float32


def current_version(session: Session, domain: str) -> int:
    """The domain's gallery version (0 before any change)."""
    version = session.scalar(select(IndexState.version).where(IndexState.domain == domain))
    return int(version or 0)


def bump_version(session: Session, domain: str, changes: Sequence[tuple[str, int, int]]) -> tuple[int, int]:
    """Increase the domain's gallery version and log its ``(op, face id, identity id)`` changes, in the
    current transaction; returns (old, new). Every version gets at least one log row, so a reader can
    tell a complete delta from a pruned one."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(IndexState).values(domain=domain, version=0).on_conflict_do_nothing())
    new = session.scalar(
        update(IndexState)
        .where(IndexState.domain == domain)
        .values(version=IndexState.version + 1)
        .returning(IndexState.version)
    )
    assert new is not None
    rows = [{"domain": domain, "version": new, "op": op, "face_id": f, "identity_id": i} for op, f, i in changes]
    session.execute(insert_rows(GalleryChange), rows or [{"domain": domain, "version": new, "op": "none"}])
    return int(new) - 1, int(new)


def changes_between(
    session: Session, domain: str, after: int, upto: int, dim: int
) -> list[tuple[str, int, int, np.ndarray | None]] | None:
    """The logged changes of versions ``after+1 .. upto`` in order, with the embedding of each face still
    stored; None when the log does not cover every one of those versions."""
    rows = session.execute(
        select(
            GalleryChange.version, GalleryChange.op, GalleryChange.face_id, GalleryChange.identity_id, Face.embedding
        )
        .outerjoin(Face, Face.id == GalleryChange.face_id)
        .where(GalleryChange.domain == domain, GalleryChange.version > after, GalleryChange.version <= upto)
        .order_by(GalleryChange.version, GalleryChange.id)
    ).all()
    if len({row.version for row in rows}) != upto - after:
        return None
    changes = []
    for row in rows:
        if row.op == "none":
            continue
        vector = embedding_from_bytes(row.embedding).reshape(dim) if row.embedding is not None else None
        changes.append((row.op, int(row.face_id), int(row.identity_id), vector))
    return changes


def embedding_to_bytes(vector: np.ndarray) -> bytes:
    """Serialise an embedding for SQL."""
    return np.ascontiguousarray(vector, dtype=EMBEDDING_DTYPE).tobytes()


def embedding_from_bytes(blob: bytes) -> np.ndarray:
    """Read an embedding stored by :func:`embedding_to_bytes`."""
    return np.frombuffer(blob, dtype=EMBEDDING_DTYPE)


def load_embeddings(session: Session, domain: str, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every stored face of a domain as (face ids, identity ids, vectors), streamed from SQL."""
    rows = session.execute(
        select(Face.id, Face.identity_id, Face.embedding)
        .where(Face.domain == domain)
        .order_by(Face.id)
        .execution_options(yield_per=2000)
    )
    face_ids: list[int] = []
    identity_ids: list[int] = []
    blobs: list[bytes] = []
    for face_id, identity_id, blob in rows:
        face_ids.append(face_id)
        identity_ids.append(identity_id)
        blobs.append(blob)
    vectors = (
        np.frombuffer(b"".join(blobs), dtype=EMBEDDING_DTYPE).reshape(-1, dim)
        if blobs
        else np.zeros((0, dim), dtype=EMBEDDING_DTYPE)
    )
    return np.asarray(face_ids, dtype=np.int64), np.asarray(identity_ids, dtype=np.int64), vectors.copy()


def identity_names(session: Session, identity_ids: Iterable[int]) -> dict[int, str]:
    """Names of the given identities."""
    wanted = sorted(set(identity_ids))
    if not wanted:
        return {}
    rows = session.execute(select(Identity.id, Identity.name).where(Identity.id.in_(wanted)))
    return {identity_id: name for identity_id, name in rows}


def gallery_domains(session: Session) -> list[str]:
    """Domains that have a gallery (enrolled faces or a recorded version)."""
    with_faces = set(session.scalars(select(Face.domain).distinct()))
    with_state = set(session.scalars(select(IndexState.domain)))
    return sorted(with_faces | with_state)


def versioned_domains(session: Session) -> list[str]:
    """Domains whose gallery has changed at least once (every enrollment bumps the version): one small table."""
    return sorted(session.scalars(select(IndexState.domain)))
