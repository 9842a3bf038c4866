"""Search and maintain a domain's gallery: SQL is the truth, the FAISS index its cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from service.db import gallery as queries
from service.search.index import IdentityIndex
from service.search.store import IndexStore, Loader


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

    def version(self, domain: str) -> int:
        """The domain's gallery version in SQL."""
        with self.sessions() as session:
            return queries.current_version(session, domain)

    def index(self, domain: str) -> IdentityIndex:
        """The domain's index, up to date with SQL (another process's changes included)."""
        return self.store.get(domain, self.version(domain), self._loader(domain))

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
        self.store.update(domain, old_version, new_version, change, self._loader(domain))

    def rebuild(self, domain: str) -> IdentityIndex:
        """Rebuild the domain's index from SQL and persist it."""
        return self.store.rebuild(domain, self.version(domain), self._loader(domain))

    def domains(self) -> list[str]:
        """Domains with a gallery."""
        with self.sessions() as session:
            return queries.gallery_domains(session)
