"""Gallery queries: gallery versions and stored embeddings."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.db.models import Face, Identity, IndexState

EMBEDDING_DTYPE = np.float32


def current_version(session: Session, domain: str) -> int:
    """The domain's gallery version (0 before any change)."""
    version = session.scalar(select(IndexState.version).where(IndexState.domain == domain))
    return int(version or 0)


def bump_version(session: Session, domain: str) -> tuple[int, int]:
    """Increase the domain's gallery version in the current transaction; returns (old, new)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(IndexState).values(domain=domain, version=0).on_conflict_do_nothing())
    new = session.scalar(
        update(IndexState)
        .where(IndexState.domain == domain)
        .values(version=IndexState.version + 1)
        .returning(IndexState.version)
    )
    assert new is not None
    return int(new) - 1, int(new)


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
