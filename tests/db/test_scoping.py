"""Every identity, face, gallery and batch query answers for one domain only (design §3: everything is scoped
to the token's domain). Two domains hold look-alike data; each query must see its own and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.db import batches as batch_queries
from service.db import gallery as gallery_queries
from service.db import identities as queries
from service.db.models import Face, Identity
from service.db.session import create_db_engine, create_session_factory
from tests.batches.stored import store_batch

MINE, THEIRS = "a.example", "b.example"
DIM = 4


@dataclass(frozen=True, slots=True)
class Person:
    domain: str
    identity_id: int
    face_id: int


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = create_db_engine(database_url)
    yield create_session_factory(engine)
    engine.dispose()


def add_person(sessions: sessionmaker[Session], domain: str, name: str, value: float) -> Person:
    """A person with one face (embedding filled with ``value``), logged as a gallery change."""
    with sessions.begin() as session:
        identity = Identity(domain=domain, name=name)
        session.add(identity)
        session.flush()
        face = Face(
            identity_id=identity.id,
            domain=domain,
            embedding=gallery_queries.embedding_to_bytes(np.full(DIM, value, dtype=np.float32)),
            det_score=0.9,
            filename=f"{name}.jpg",
            content_sha256=f"{domain}-{name}".ljust(64, "0")[:64],
            model_name="test",
            thumbnail=b"jpeg",
        )
        session.add(face)
        session.flush()
        gallery_queries.bump_version(session, domain, [("add", face.id, identity.id)])
        return Person(domain, identity.id, face.id)


@pytest.fixture
def people(sessions: sessionmaker[Session]) -> tuple[Person, Person]:
    """The same name in both domains: a query that forgets the domain finds two people, or the wrong one."""
    return add_person(sessions, MINE, "Ann Lee", 1.0), add_person(sessions, THEIRS, "Ann Lee", 2.0)


def test_get_identity_finds_a_person_only_in_their_own_domain(
    sessions: sessionmaker[Session], people: tuple[Person, Person]
) -> None:
    mine, theirs = people
    with sessions() as session:
        assert queries.get_identity(session, MINE, theirs.identity_id) is None
        found = queries.get_identity(session, MINE, mine.identity_id)
        assert found is not None
        assert found.domain == MINE


def test_lock_identity_finds_a_person_only_in_their_own_domain(
    sessions: sessionmaker[Session], people: tuple[Person, Person]
) -> None:
    mine, theirs = people
    with sessions.begin() as session:
        assert queries.lock_identity(session, MINE, theirs.identity_id) is None
        locked = queries.lock_identity(session, MINE, mine.identity_id)
        assert locked is not None
        assert locked.id == mine.identity_id


def test_find_by_name_looks_in_one_domain(sessions: sessionmaker[Session], people: tuple[Person, Person]) -> None:
    mine, theirs = people
    with sessions() as session:
        assert queries.find_by_name(session, "c.example", "Ann Lee") is None
        found = [queries.find_by_name(session, domain, "Ann Lee") for domain in (MINE, THEIRS)]
    assert [f.id if f else None for f in found] == [mine.identity_id, theirs.identity_id]


@pytest.mark.parametrize("query", [None, "ann"])
def test_list_identities_lists_and_counts_one_domain(
    sessions: sessionmaker[Session], people: tuple[Person, Person], query: str | None
) -> None:
    mine, _ = people
    add_person(sessions, THEIRS, "Annabel", 3.0)
    with sessions() as session:
        total, rows = queries.list_identities(session, MINE, 50, 0, query)
    assert total == 1
    assert [(row.identity.id, row.face_count) for row in rows] == [(mine.identity_id, 1)]


def test_get_face_finds_a_face_only_in_its_own_domain(
    sessions: sessionmaker[Session], people: tuple[Person, Person]
) -> None:
    mine, theirs = people
    with sessions() as session:
        assert queries.get_face(session, MINE, theirs.identity_id, theirs.face_id) is None
        assert queries.get_face(session, MINE, mine.identity_id, theirs.face_id) is None
        found = queries.get_face(session, MINE, mine.identity_id, mine.face_id)
        assert found is not None
        assert found.id == mine.face_id


def test_delete_face_row_deletes_only_in_its_own_domain(
    sessions: sessionmaker[Session], people: tuple[Person, Person]
) -> None:
    mine, theirs = people
    with sessions.begin() as session:
        assert queries.delete_face_row(session, MINE, theirs.identity_id, theirs.face_id) is False
    with sessions() as session:
        assert set(session.scalars(select(Face.id))) == {mine.face_id, theirs.face_id}


def test_load_embeddings_reads_one_domains_gallery(
    sessions: sessionmaker[Session], people: tuple[Person, Person]
) -> None:
    mine, _ = people
    with sessions() as session:
        face_ids, identity_ids, vectors = gallery_queries.load_embeddings(session, MINE, DIM)
    assert face_ids.tolist() == [mine.face_id]
    assert identity_ids.tolist() == [mine.identity_id]
    assert vectors.tolist() == [[1.0] * DIM]


def test_gallery_versions_and_changes_are_per_domain(
    sessions: sessionmaker[Session], people: tuple[Person, Person]
) -> None:
    mine, _ = people
    add_person(sessions, THEIRS, "Annabel", 3.0)
    with sessions() as session:
        assert gallery_queries.current_version(session, MINE) == 1
        assert gallery_queries.current_version(session, THEIRS) == 2
        changes = gallery_queries.changes_between(session, MINE, 0, 1, DIM)
    assert changes is not None
    assert [(op, face_id, identity_id) for op, face_id, identity_id, _ in changes] == [
        ("add", mine.face_id, mine.identity_id)
    ]


def test_get_batch_finds_a_batch_only_in_its_own_domain(sessions: sessionmaker[Session]) -> None:
    store_batch(sessions, "20231215_143022_0001", 1, domain=THEIRS)
    with sessions() as session:
        assert batch_queries.get_batch(session, MINE, "20231215_143022_0001") is None
        assert batch_queries.get_batch(session, THEIRS, "20231215_143022_0001") is not None


def test_list_batches_lists_and_counts_one_domain(sessions: sessionmaker[Session]) -> None:
    store_batch(sessions, "20231215_143022_0001", 1, domain=MINE)
    store_batch(sessions, "20231215_143022_0002", 1, domain=THEIRS)
    store_batch(sessions, "20231215_143022_0003", 1, domain=THEIRS)
    with sessions() as session:
        page = batch_queries.list_batches(session, MINE, 50, 0)
    assert page.total == 1
    assert [batch.id for batch in page.batches] == ["20231215_143022_0001"]


def test_delete_batch_deletes_only_in_its_own_domain(sessions: sessionmaker[Session]) -> None:
    store_batch(sessions, "20231215_143022_0001", 2, domain=THEIRS)
    with sessions.begin() as session:
        assert batch_queries.delete_batch(session, MINE, "20231215_143022_0001") is False
    with sessions() as session:
        assert batch_queries.get_batch(session, THEIRS, "20231215_143022_0001") is not None
        assert len(list(batch_queries.iter_entries(session, "20231215_143022_0001"))) == 2
