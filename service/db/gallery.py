"""Gallery queries: gallery versions and stored embeddings."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy import insert as insert_rows
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.common.time import utcnow
from service.db.models import Face, GalleryChange, Identity, IndexSnapshot, IndexState

EMBEDDING_DTYPE = np.float32
STREAM_ROWS = 2000


def current_version(session: Session, domain: str) -> int:
    """The domain's gallery version (0 before any change)."""
    version = session.scalar(select(IndexState.version).where(IndexState.domain == domain))
    return int(version or 0)


def _insert(session: Session) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def bump_version(session: Session, domain: str, changes: Sequence[tuple[str, int, int]]) -> tuple[int, int]:
    """Increase the domain's gallery version and log its ``(op, face id, identity id)`` changes, in the
    current transaction; returns (old, new). Every version gets at least one log row, so a reader can
    tell a complete delta from a pruned one."""
    session.execute(_insert(session)(IndexState).values(domain=domain, version=0).on_conflict_do_nothing())
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


def face_count(session: Session, domain: str) -> int:
    """How many faces a domain has stored."""
    return int(session.scalar(select(func.count()).select_from(Face).where(Face.domain == domain)) or 0)


def load_embeddings(
    session: Session, domain: str, dim: int, spill_dir: Path | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every stored face of a domain as (face ids, identity ids, vectors), streamed from SQL.

    The vectors are gathered once, in one growing buffer (about their own size in memory), or with
    ``spill_dir`` in a file there, memory-mapped, whose name is gone once this returns (a gallery
    larger than memory).
    """
    rows = session.execute(
        select(Face.id, Face.identity_id, Face.embedding)
        .where(Face.domain == domain)
        .order_by(Face.id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    id_parts: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    owner_parts: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    buffer = bytearray()
    if spill_dir is not None:
        spill_dir.mkdir(parents=True, exist_ok=True)
    spill = tempfile.NamedTemporaryFile(dir=spill_dir, prefix="load-", suffix=".f32") if spill_dir else None  # noqa: SIM115 - closed by the with below
    with spill if spill is not None else contextlib.nullcontext():
        for partition in rows.partitions():
            id_parts.append(np.fromiter((row[0] for row in partition), dtype=np.int64, count=len(partition)))
            owner_parts.append(np.fromiter((row[1] for row in partition), dtype=np.int64, count=len(partition)))
            data = b"".join(row[2] for row in partition)
            if spill is None:
                buffer += data
            else:
                spill.write(data)
        face_ids, identity_ids = np.concatenate(id_parts), np.concatenate(owner_parts)
        if not len(face_ids):
            vectors = np.zeros((0, dim), dtype=EMBEDDING_DTYPE)
        elif spill is None:
            vectors = np.frombuffer(buffer, dtype=EMBEDDING_DTYPE).reshape(-1, dim)
        else:
            spill.flush()
            # The mapping outlives the file's name, which goes when the file is closed.
            vectors = np.memmap(spill.name, dtype=EMBEDDING_DTYPE, mode="r", shape=(len(face_ids), dim))
    return face_ids, identity_ids, vectors


def embeddings_by_id(
    session: Session, domain: str, face_ids: Sequence[int] | np.ndarray, dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """The stored embeddings of these faces of a domain as (face ids found, vectors); missing ids are left out."""
    wanted = sorted({int(f) for f in face_ids})
    found_ids: list[int] = []
    blobs: list[bytes] = []
    for start in range(0, len(wanted), STREAM_ROWS):
        rows = session.execute(
            select(Face.id, Face.embedding).where(
                Face.domain == domain, Face.id.in_(wanted[start : start + STREAM_ROWS])
            )
        )
        for face_id, blob in rows:
            found_ids.append(face_id)
            blobs.append(blob)
    vectors = (
        np.frombuffer(b"".join(blobs), dtype=EMBEDDING_DTYPE).reshape(-1, dim)
        if blobs
        else np.zeros((0, dim), dtype=EMBEDDING_DTYPE)
    )
    return np.asarray(found_ids, dtype=np.int64), vectors


def record_snapshot(
    session: Session, domain: str, holder: str, version: int, *, keep_versions: int, holder_retention: timedelta
) -> int:
    """Record that ``holder``'s index file of ``domain`` is at ``version``, then prune the change log below
    what every holder's file still needs (and below the last ``keep_versions`` versions, which processes
    catching up in memory use); returns the log rows deleted.

    Holders silent for longer than ``holder_retention`` (a replica gone for good) no longer hold the log
    back: their file, if it comes back, is rebuilt from SQL.
    """
    # Lock the domain's version row: prunes of one domain run one at a time, never interleaved.
    current = session.scalar(select(IndexState.version).where(IndexState.domain == domain).with_for_update())
    insert = _insert(session)(IndexSnapshot).values(domain=domain, holder=holder, version=version, saved_at=utcnow())
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[IndexSnapshot.domain, IndexSnapshot.holder],
            set_={"version": insert.excluded.version, "saved_at": insert.excluded.saved_at},
        )
    )
    session.execute(
        delete(IndexSnapshot).where(
            IndexSnapshot.domain == domain, IndexSnapshot.saved_at < utcnow() - holder_retention
        )
    )
    needed = session.scalar(select(func.min(IndexSnapshot.version)).where(IndexSnapshot.domain == domain))
    floor = min(int(needed if needed is not None else version), int(current or 0) - keep_versions)
    if floor <= 0:
        return 0
    result = session.execute(
        delete(GalleryChange).where(GalleryChange.domain == domain, GalleryChange.version <= floor)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def change_log_size(session: Session, domain: str) -> int:
    """Rows of the domain's change log (for monitoring and tests)."""
    return int(
        session.scalar(select(func.count()).select_from(GalleryChange).where(GalleryChange.domain == domain)) or 0
    )


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
