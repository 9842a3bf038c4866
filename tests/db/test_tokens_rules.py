"""API token rules: the secret's form, what is stored, roles, revocation of exactly one token, listing, and the
principal a token stands for."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.db import tokens as token_queries
from service.db.models import ApiToken
from service.db.tokens import Principal, authenticate, create_token, hash_token, list_tokens, revoke_token


def test_a_secret_is_frk_and_256_random_bits_in_url_safe_base64(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        secrets = {create_token(session, "example.com", "user")[1] for _ in range(5)}
    assert len(secrets) == 5
    assert all(re.fullmatch(r"frk_[A-Za-z0-9_-]{43}", secret) for secret in secrets)


def test_the_stored_hash_is_the_sha256_of_the_utf8_secret() -> None:
    assert hash_token("frk_é") == "816522004f125966845a2a7b42a0e052c4bc2a7ab0c0f0bcfbf8eef4e0c7b02d"
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_a_token_keeps_its_name_and_a_trimmed_domain(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        create_token(session, "  example.com ", "admin", "ci runner")
        create_token(session, "example.com", "user")
    with sessions() as session:
        stored = [(t.domain, t.role, t.name) for t in session.scalars(select(ApiToken).order_by(ApiToken.id))]
    assert stored == [("example.com", "admin", "ci runner"), ("example.com", "user", "")]


def test_a_token_needs_a_known_role_and_says_which_roles_exist(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session, pytest.raises(ValueError, match=r"^role must be one of user, admin$"):
        create_token(session, "example.com", "root")  # type: ignore[arg-type]
    with sessions.begin() as session, pytest.raises(ValueError, match=r"^domain must not be empty$"):
        create_token(session, " \t", "admin")
    with sessions() as session:
        assert session.scalars(select(ApiToken)).all() == []


def test_a_token_stands_for_its_own_row_domain_and_role(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        create_token(session, "other.example", "user")
        row, secret = create_token(session, "example.com", "admin")
        row_id = row.id
    with sessions.begin() as session:
        principal = authenticate(session, secret)
    assert principal == Principal(token_id=row_id, domain="example.com", role="admin")
    assert principal.is_admin
    assert not Principal(token_id=1, domain="example.com", role="user").is_admin


def test_revoking_a_token_leaves_every_other_token_working(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        first, first_secret = create_token(session, "example.com", "admin")
        _, second_secret = create_token(session, "example.com", "admin")
        first_id = first.id
    with sessions.begin() as session:
        assert revoke_token(session, first_id) is True
    with sessions.begin() as session:
        assert authenticate(session, first_secret) is None
        assert authenticate(session, second_secret) is not None
    with sessions.begin() as session:
        assert revoke_token(session, 999_999) is False


def test_listing_tokens_is_oldest_first_and_can_keep_to_one_domain(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        for domain in ("b.example", "a.example", "b.example"):
            create_token(session, domain, "user", domain)
    with sessions() as session:
        every = list_tokens(session)
        one_domain = list_tokens(session, "b.example")
    assert [t.domain for t in every] == ["b.example", "a.example", "b.example"]
    assert [t.id for t in every] == sorted(t.id for t in every)
    assert [t.domain for t in one_domain] == ["b.example", "b.example"]
    assert [t.id for t in one_domain] == sorted(t.id for t in one_domain)


def test_a_use_a_minute_or_more_after_the_last_recorded_one_is_recorded(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2026, 11, 25, 12, 0, 0)
    with sessions.begin() as session:
        row, secret = create_token(session, "example.com", "user")
        row.last_used_at = now - timedelta(seconds=59)
    monkeypatch.setattr(token_queries, "utcnow", lambda: now)
    with sessions.begin() as session:
        authenticate(session, secret)
    with sessions() as session:
        assert session.scalars(select(ApiToken.last_used_at)).one() == now - timedelta(seconds=59)
    monkeypatch.setattr(token_queries, "utcnow", lambda: now + timedelta(seconds=1))
    with sessions.begin() as session:
        authenticate(session, secret)
    with sessions() as session:
        assert session.scalars(select(ApiToken.last_used_at)).one() == now + timedelta(seconds=1)
