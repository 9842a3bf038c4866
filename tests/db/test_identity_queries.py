"""Listing people is one page query, counts only the domain's own faces, and names each newest face."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from service.db.identities import list_identities
from service.db.models import Face, Identity
from tests.conftest import statements_while


def add_people(sessions: sessionmaker[Session], domain: str, count: int, faces_each: int) -> dict[str, int]:
    """People named p00, p01, ... with ``faces_each`` faces; returns name -> newest face id."""
    newest = {}
    with sessions.begin() as session:
        for i in range(count):
            person = Identity(domain=domain, name=f"p{i:02d}")
            session.add(person)
            session.flush()
            for j in range(faces_each):
                face = Face(
                    identity_id=person.id,
                    domain=domain,
                    embedding=b"\0" * 2048,
                    det_score=0.9,
                    filename=f"{j}.jpg",
                    content_sha256=f"{domain}-{i}-{j}",
                    model_name="test",
                )
                session.add(face)
                session.flush()
                newest[person.name] = face.id
    return newest


def test_a_page_of_people_costs_two_queries_whatever_its_size(sessions: sessionmaker[Session]) -> None:
    add_people(sessions, "example.com", 30, 2)
    statements = statements_while(sessions, lambda session: list_identities(session, "example.com", 30, 0, None))
    assert statements == ["SELECT", "SELECT"]  # the total, and the page with counts and newest faces


def test_each_person_is_listed_with_their_face_count_and_newest_face(sessions: sessionmaker[Session]) -> None:
    newest = add_people(sessions, "example.com", 3, 2)
    add_people(sessions, "other.example", 3, 5)
    with sessions() as session:
        total, rows = list_identities(session, "example.com", 10, 0, None)
    assert total == 3
    assert [(r.identity.name, r.face_count, r.newest_face_id) for r in rows] == [
        (name, 2, newest[name]) for name in ("p00", "p01", "p02")
    ]


def test_a_person_without_faces_has_no_newest_face(sessions: sessionmaker[Session]) -> None:
    add_people(sessions, "example.com", 1, 0)
    with sessions() as session:
        _, [row] = list_identities(session, "example.com", 10, 0, None)
    assert (row.face_count, row.newest_face_id) == (0, None)
