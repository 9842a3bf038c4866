"""Search and maintain a domain's gallery: SQL is the truth, the FAISS index its cache."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from service.db import gallery as queries
from service.search.index import ExactVectors, IdentityIndex, choose_kind
from service.search.store import Change, Delta, IndexStore, Loader, apply_changes

logger = logging.getLogger(__name__)

KEEP_LOG_VERSIONS = 100  # recent versions kept in the change log for processes catching up in memory
HOLDER_RETENTION = timedelta(days=7)  # an index folder silent this long no longer holds the change log back
COMPRESSED_AGREEMENT = 0.99  # decoded SQ8 vectors sit at cosine >= 0.9998 of the embeddings they encode


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
    """Per-domain identity search backed by SQL and an :class:`IndexStore`.

    Each index file the store saves is recorded in SQL (per domain and index folder), and the change log
    is pruned below what every folder's file needs and below the last ``keep_versions`` versions.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: IndexStore,
        *,
        keep_versions: int = KEEP_LOG_VERSIONS,
        holder_retention: timedelta = HOLDER_RETENTION,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.keep_versions = keep_versions
        self.holder_retention = holder_retention
        store.on_saved = self._record_snapshot

    def _record_snapshot(self, domain: str, version: int) -> None:
        with self.sessions.begin() as session:
            pruned = queries.record_snapshot(
                session,
                domain,
                self.store.holder,
                version,
                keep_versions=self.keep_versions,
                holder_retention=self.holder_retention,
            )
        if pruned:
            logger.debug("pruned %d change log row(s) of domain %r", pruned, domain)

    def _loader(self, domain: str) -> Loader:
        def load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            with self.sessions() as session:
                count = queries.face_count(session, domain)
                # A gallery that will be compressed may not fit in memory as floats: gather it on disk.
                big = choose_kind(count, self.store.compress_above) == "sq8"
                spill = self.store.directory if big else None
                return queries.load_embeddings(session, domain, self.store.dim, spill_dir=spill)

        return load

    def _exact(self, domain: str) -> ExactVectors:
        def vectors(face_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            with self.sessions() as session:
                return queries.embeddings_by_id(session, domain, face_ids, self.store.dim)

        return vectors

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
        # A compressed index re-ranks its short list with the exact embeddings, read from SQL.
        hits = self.index(domain).search(embeddings, k, exact=self._exact(domain))
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

    def close(self) -> None:
        """Save every index that changed since its snapshot and stop background saving (at shutdown)."""
        self.store.close()

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
        stored = indexed_vectors[[position[f] for f in face_ids.tolist()]]
        if index.kind == "flat":
            drift = float(np.abs(stored - vectors).max())
            if drift > 1e-5:
                problems.append(f"embeddings differ from SQL (max difference {drift:.3g})")
        else:
            # 8-bit codes are approximate by design: a face is wrong when its code no longer points its way.
            agreement = float(np.min(np.sum(stored * vectors, axis=1) / np.linalg.norm(stored, axis=1)))
            if agreement < COMPRESSED_AGREEMENT:
                problems.append(f"embeddings differ from SQL (an 8-bit code only {agreement:.3f} similar to SQL's)")
    return problems
