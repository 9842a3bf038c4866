"""Search and maintain a domain's gallery: SQL is the truth, the FAISS index its cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from service.db import gallery as queries
from service.search.index import IdentityIndex
from service.search.store import Change, Delta, IndexStore, Loader


@dataclass(slots=True)
class IndexCheck:
    """How a domain's index file compares with SQL."""

    domain: str
    sql_version: int
    sql_faces: int
    file_version: int | None = None
    index_faces: int = 0
    problems: list[str] = field(default_factory=list)
    repaired: bool = False

    @property
    def consistent(self) -> bool:
        """Whether the file agreed with SQL."""
        return not self.problems


@dataclass(frozen=True, slots=True)
class NamedMatch:
    """A search hit with the person's current name."""

    identity_id: int
    name: str
    face_id: int
    similarity: float


class Gallery:
    """Per-domain identity search backed by SQL and an :class:`IndexStore`."""

    def __init__(self, sessions: sessionmaker[Session], store: IndexStore) -> None:
        self.sessions = sessions
        self.store = store

    def _loader(self, domain: str) -> Loader:
        def load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            with self.sessions() as session:
                return queries.load_embeddings(session, domain, self.store.dim)

        return load

    def _delta(self, domain: str) -> Delta:
        def changes(after: int, upto: int) -> list[Change] | None:
            with self.sessions() as session:
                return queries.changes_between(session, domain, after, upto, self.store.dim)

        return changes

    def version(self, domain: str) -> int:
        """The domain's gallery version in SQL."""
        with self.sessions() as session:
            return queries.current_version(session, domain)

    def index(self, domain: str) -> IdentityIndex:
        """The domain's index, up to date with SQL (another process's changes included)."""
        return self.store.get(domain, self.version(domain), self._loader(domain), self._delta(domain))

    def search(self, domain: str, embeddings: np.ndarray, k: int = 3) -> list[list[NamedMatch]]:
        """The ``k`` best distinct people for each embedding, with their current names."""
        if not len(embeddings):
            return []
        hits = self.index(domain).search(embeddings, k)
        with self.sessions() as session:
            names = queries.identity_names(session, (m.identity_id for row in hits for m in row))
        return [
            [
                NamedMatch(m.identity_id, names[m.identity_id], m.face_id, m.similarity)
                for m in row
                if m.identity_id in names
            ]
            for row in hits
        ]

    def apply(self, domain: str, old_version: int, new_version: int, change: Callable[[IdentityIndex], object]) -> None:
        """Apply a change just committed to SQL (which moved the version old -> new) to the index."""
        self.store.update(domain, old_version, new_version, change, self._loader(domain), self._delta(domain))

    def rebuild(self, domain: str) -> IdentityIndex:
        """Rebuild the domain's index from SQL and persist it."""
        return self.store.rebuild(domain, self.version(domain), self._loader(domain))

    def verify(self, domain: str, repair: bool = True) -> IndexCheck:
        """Compare the domain's index file with SQL; rebuild it from SQL when they disagree (and ``repair``)."""
        version = self.version(domain)
        face_ids, identity_ids, vectors = self._loader(domain)()
        expected = dict(zip(face_ids.tolist(), identity_ids.tolist(), strict=True))
        found = self.store.read_file(domain)
        check = IndexCheck(domain=domain, sql_version=version, sql_faces=len(expected))
        if found is None:
            check.problems.append("no readable index file")
        else:
            index, check.file_version = found
            indexed_faces, indexed_owners, indexed_vectors = index.contents()
            actual = dict(zip(indexed_faces.tolist(), indexed_owners.tolist(), strict=True))
            check.index_faces = len(actual)
            missing = sorted(set(expected) - set(actual))
            extra = sorted(set(actual) - set(expected))
            moved = sorted(f for f in set(expected) & set(actual) if expected[f] != actual[f])
            if check.file_version != version:
                check.problems.append(f"file is at gallery version {check.file_version}, SQL at {version}")
            if missing:
                check.problems.append(f"{len(missing)} face(s) in SQL but not in the index, e.g. {missing[:5]}")
            if extra:
                check.problems.append(f"{len(extra)} face(s) in the index but not in SQL, e.g. {extra[:5]}")
            if moved:
                check.problems.append(f"{len(moved)} face(s) filed under the wrong person, e.g. {moved[:5]}")
            if not (missing or extra or moved) and len(face_ids):
                position = {face: i for i, face in enumerate(indexed_faces.tolist())}
                drift = float(np.abs(indexed_vectors[[position[f] for f in face_ids.tolist()]] - vectors).max())
                if drift > 1e-5:
                    check.problems.append(f"embeddings differ from SQL (max difference {drift:.3g})")
        if check.problems and repair:
            self.store.rebuild(domain, version, lambda: (face_ids, identity_ids, vectors))
            check.repaired = True
        return check

    def domains(self) -> list[str]:
        """Domains with a gallery."""
        with self.sessions() as session:
            return queries.gallery_domains(session)
