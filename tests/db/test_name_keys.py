"""Names are unique per domain ignoring case, spacing and Unicode-compatible forms, enforced in SQL."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.common.names import name_key
from service.db import identities as queries
from service.db import migrate
from service.db.models import Identity
from service.db.session import create_db_engine


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Barack Obama", "barack obama"),
        ("  barack   OBAMA ", "barack obama"),
        ("ＢＡＲＡＣＫ ＯＢＡＭＡ", "barack obama"),  # full-width letters
        ("Straße", "strasse"),
        ("Ǆemal", "džemal"),
    ],
)
def test_the_name_key_ignores_case_spacing_and_compatible_forms(name: str, key: str) -> None:
    assert name_key(name) == key


def test_sql_refuses_a_second_person_whose_name_differs_only_in_case(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        session.add(Identity(domain="d", name="Barack Obama"))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(Identity(domain="d", name="barack  obama"))
    with sessions.begin() as session:
        session.add(Identity(domain="other", name="barack obama"))  # another domain is another gallery
        assert queries.find_by_name(session, "d", "BARACK OBAMA") is not None


def test_upgrading_keeps_people_whose_names_already_clash_and_reports_them(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    migrate.downgrade(database_url, "0005")
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            for domain, name in [("d", "Barack Obama"), ("d", "barack obama"), ("d", "Joe"), ("e", "BARACK OBAMA")]:
                connection.execute(
                    text("INSERT INTO identities (domain, name, created_at, updated_at) VALUES (:d, :n, :t, :t)"),
                    {"d": domain, "n": name, "t": datetime(2026, 1, 1)},
                )
        engine.dispose()
        with caplog.at_level("WARNING"):
            migrate.upgrade(database_url)
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, domain, name, name_key FROM identities ORDER BY id")).all()
        first, second, joe, other = rows
        assert first.name_key == "barack obama"
        assert second.name_key == f"barack obama #{second.id}"  # kept, and still unique
        assert (joe.name_key, other.name_key) == ("joe", "barack obama")
        assert any("'barack obama'" in r.getMessage() and "'Barack Obama'" in r.getMessage() for r in caplog.records)
    finally:
        migrate.upgrade(database_url)
        engine.dispose()


def test_people_are_listed_by_name_whatever_its_case(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        session.add_all(Identity(domain="d", name=name) for name in ("bob", "Alice", "carl", "Dave"))
    with sessions() as session:
        _, rows = queries.list_identities(session, "d", 10, 0, None)
    assert [row.identity.name for row in rows] == ["Alice", "bob", "carl", "Dave"]
