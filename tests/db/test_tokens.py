"""Tokens are random, shown once and stored only as SHA-256."""

from __future__ import annotations

import hashlib
from datetime import datetime

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import ApiToken
from service.db.tokens import authenticate, create_token, revoke_token
from tests.conftest import statements_while


def test_only_the_hash_of_a_token_is_stored(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        _, secret = create_token(session, "example.com", "admin", "ci")
    with sessions() as session:
        stored = session.scalars(select(ApiToken)).one()
    assert stored.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {stored.token_hash, stored.name, stored.domain}


def test_a_token_authenticates_as_its_domain_and_role_and_records_its_use(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        _, secret = create_token(session, "acme.test", "user")
    with sessions.begin() as session:
        principal = authenticate(session, secret)
    assert principal is not None
    assert (principal.domain, principal.role, principal.is_admin) == ("acme.test", "user", False)
    with sessions() as session:
        assert session.scalars(select(ApiToken)).one().last_used_at is not None


def test_a_revoked_token_no_longer_authenticates(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        row, secret = create_token(session, "example.com", "user")
    with sessions.begin() as session:
        assert revoke_token(session, row.id)
        assert not revoke_token(session, row.id)
    with sessions.begin() as session:
        assert authenticate(session, secret) is None


def test_an_unknown_token_does_not_authenticate(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert authenticate(session, "frk_not-a-token") is None


def test_a_token_needs_a_domain_and_a_known_role(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session, pytest.raises(ValueError, match="domain"):
        create_token(session, "  ", "user")
    with sessions.begin() as session, pytest.raises(ValueError, match="role"):
        create_token(session, "example.com", "root")  # type: ignore[arg-type]


def test_a_token_used_again_within_a_minute_causes_no_write(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        _, secret = create_token(session, "example.com", "user")
    assert "UPDATE" in statements_while(sessions, lambda session: authenticate(session, secret))
    assert "UPDATE" not in statements_while(sessions, lambda session: authenticate(session, secret))


def test_a_token_used_after_a_minute_records_the_new_use(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        row, secret = create_token(session, "example.com", "user")
    long_ago = datetime(2020, 1, 1)
    with sessions.begin() as session:
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=long_ago))
    with sessions.begin() as session:
        authenticate(session, secret)
    with sessions() as session:
        used = session.scalars(select(ApiToken)).one().last_used_at
    assert used is not None
    assert used > long_ago
