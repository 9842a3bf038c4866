"""Search and maintain a domain's gallery: SQL is the truth, the FAISS index its cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from service.db import gallery as queries
from service.search.index import IdentityIndex
from service.search.store import Change, Delta, IndexStore, Loader, apply_changes


@dataclass(slots=True)
class IndexCheck:
    """How a domain's index file compares with SQL.

    A file that is only *behind* (an older version whose changes the log in SQL still holds) is not a
    problem: every process replays such a gap when it loads the file. Problems are what replaying cannot
    fix: a missing or unreadable file, a file ahead of SQL or beyond the log, or contents that differ
    from SQL once replayed.
    """

    domain: str
    sql_version: int
    sql_faces: int
    file_version: int | None = None
    index_faces: int = 0
    behind: int = 0  # versions between the file and SQL, replayed from the change log
    problems: list[str] = field(default_factory=list)
    repaired: str | None = None  # what repair did, when it did something

    @property
    def consistent(self) -> bool:
        """Whether the file agrees with SQL (once caught up, if it was behind)."""
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
        """Compare the domain's index file, caught up from the change log when behind, with SQL.

        With ``repair``, a file with problems is rebuilt from SQL and a file that was only behind is
        saved at SQL's version.
        """
        version = self.version(domain)
        face_ids, identity_ids, vectors = self._loader(domain)()
        check = IndexCheck(domain=domain, sql_version=version, sql_faces=len(face_ids))
        found = self.store.read_file(domain)
        if found is None:
            check.problems.append(
                "index file is unreadable (damaged, or written for another model or file format)"
                if self.store.path_for(domain).exists()
                else "no index file"
            )
        else:
            index, file_version = found
            check.file_version = file_version
            if file_version > version:
                check.problems.append(f"file is at gallery version {file_version}, ahead of SQL ({version})")
            elif file_version < version:
                changes = self._delta(domain)(file_version, version)
                if changes is None:
                    check.problems.append(
                        f"file is at gallery version {file_version}, SQL at {version}, and the change log no "
                        "longer holds the changes between them, so the file cannot be caught up"
                    )
                else:
                    apply_changes(index, changes)
                    check.behind = version - file_version
            if not check.problems:
                check.index_faces = index.ntotal
                after = f"after replaying {check.behind} change(s): " if check.behind else ""
                check.problems.extend(
                    after + problem for problem in _differences(index, face_ids, identity_ids, vectors)
                )
        if repair and check.problems:
            self.store.rebuild(domain, version, lambda: (face_ids, identity_ids, vectors))
            check.repaired = f"rebuilt from SQL ({check.sql_faces} faces)"
        elif repair and check.behind:
            self.store.save(domain, index, version)
            check.repaired = f"caught up: replayed {check.behind} change(s), saved at gallery version {version}"
        return check

    def domains(self) -> list[str]:
        """Domains with a gallery."""
        with self.sessions() as session:
            return queries.gallery_domains(session)


def _differences(
    index: IdentityIndex, face_ids: np.ndarray, identity_ids: np.ndarray, vectors: np.ndarray
) -> list[str]:
    """How an index's contents differ from the faces stored in SQL (none when they agree)."""
    indexed_faces, indexed_owners, indexed_vectors = index.contents()
    expected = dict(zip(face_ids.tolist(), identity_ids.tolist(), strict=True))
    actual = dict(zip(indexed_faces.tolist(), indexed_owners.tolist(), strict=True))
    problems = []
    if len(actual) != len(indexed_faces):
        problems.append(f"{len(indexed_faces) - len(actual)} face id(s) indexed more than once")
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    moved = sorted(f for f in set(expected) & set(actual) if expected[f] != actual[f])
    if missing:
        problems.append(f"{len(missing)} face(s) in SQL but not in the index, e.g. {missing[:5]}")
    if extra:
        problems.append(f"{len(extra)} face(s) in the index but not in SQL, e.g. {extra[:5]}")
    if moved:
        problems.append(f"{len(moved)} face(s) filed under the wrong person, e.g. {moved[:5]}")
    if not problems and len(face_ids):
        position = {face: i for i, face in enumerate(indexed_faces.tolist())}
        drift = float(np.abs(indexed_vectors[[position[f] for f in face_ids.tolist()]] - vectors).max())
        if drift > 1e-5:
            problems.append(f"embeddings differ from SQL (max difference {drift:.3g})")
    return problems
