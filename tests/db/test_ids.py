"""Ids of deleted people and faces are never handed out again (a cached thumbnail URL never shows someone else)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, text
from sqlalchemy.orm import Session, sessionmaker

from service.db import identities as queries
from service.db import migrate
from service.db.gallery import bump_version
from service.db.models import Face, Identity
from service.db.session import create_db_engine, create_session_factory

DOMAIN = "example.com"


def add_person(sessions: sessionmaker[Session], name: str) -> tuple[int, int]:
    """A person with one face; returns (identity id, face id)."""
    with sessions.begin() as session:
        identity = Identity(domain=DOMAIN, name=name)
        session.add(identity)
        session.flush()
        face_id = add_face(session, identity.id, name)
        return identity.id, face_id


def add_person_before_name_keys(sessions: sessionmaker[Session], name: str) -> tuple[int, int]:
    """:func:`add_person` on a schema older than the name keys (migration 0006), where the model's columns
    are not all there yet."""
    with sessions.begin() as session:
        identity_id = session.execute(
            text("INSERT INTO identities (domain, name, created_at, updated_at) VALUES (:d, :n, :t, :t) RETURNING id"),
            {"d": DOMAIN, "n": name, "t": datetime(2026, 1, 1)},
        ).scalar_one()
        return identity_id, add_face(session, identity_id, name)


def add_face(session: Session, identity_id: int, content: str) -> int:
    face = Face(
        identity_id=identity_id,
        domain=DOMAIN,
        embedding=b"\0" * 2048,
        det_score=0.9,
        filename=f"{content}.jpg",
        content_sha256=content.ljust(64, "0"),
        model_name="test",
    )
    session.add(face)
    session.flush()
    return face.id


def test_a_new_person_never_gets_the_id_of_the_newest_deleted_person_or_face(
    sessions: sessionmaker[Session],
) -> None:
    add_person(sessions, "Ann")
    gone_identity, gone_face = add_person(sessions, "Bob")
    with sessions.begin() as session:
        queries.delete_identity_rows(session, gone_identity)

    new_identity, new_face = add_person(sessions, "Carl")

    assert new_identity > gone_identity
    assert new_face > gone_face


def test_a_new_face_never_gets_the_id_of_the_newest_deleted_face(sessions: sessionmaker[Session]) -> None:
    identity_id, _ = add_person(sessions, "Ann")
    with sessions.begin() as session:
        gone_face = add_face(session, identity_id, "second")
    with sessions.begin() as session:
        assert queries.delete_face_row(session, DOMAIN, identity_id, gone_face)

    with sessions.begin() as session:
        new_face = add_face(session, identity_id, "third")

    assert new_face > gone_face


def test_upgrading_keeps_every_person_and_face_and_skips_ids_deleted_before_the_upgrade(
    database_url: str,
) -> None:
    migrate.downgrade(database_url, "0002")
    engine = create_db_engine(database_url)
    sessions = create_session_factory(engine)
    try:
        kept_identity, kept_face = add_person_before_name_keys(sessions, "Ann")
        gone_identity, gone_face = add_person_before_name_keys(sessions, "Bob")
        with sessions.begin() as session:
            queries.delete_identity_rows(session, gone_identity)
            bump_version(session, DOMAIN, [("remove", gone_face, gone_identity)])
        engine.dispose()  # the recreated tables must not be seen through old pooled connections

        migrate.upgrade(database_url)

        with sessions() as session:
            assert [(f.id, f.identity_id) for f in queries.faces_of(session, kept_identity)] == [
                (kept_face, kept_identity)
            ]
        new_identity, new_face = add_person(sessions, "Carl")
        assert new_identity > gone_identity
        assert new_face > gone_face
        with sessions.begin() as session:  # deleting a person still deletes their faces
            session.execute(delete(Identity).where(Identity.id == kept_identity))
        with sessions() as session:
            assert queries.faces_of(session, kept_identity) == []
    finally:
        engine.dispose()
