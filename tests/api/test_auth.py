"""Every route but health needs a token; admin routes need an admin token."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import ApiToken
from service.db.tokens import hash_token, revoke_token
from tests.conftest import auth


def test_a_valid_token_opens_a_protected_route(client: httpx.Client, tokens: Callable[..., str]) -> None:
    token = tokens("example.com", "user")
    response = client.get("/api/auth/me", headers=auth(token))
    assert response.status_code == 200
    assert response.json() == {"success": True, "domain": "example.com", "role": "user"}


def test_a_bearer_token_is_accepted_too(client: httpx.Client, tokens: Callable[..., str]) -> None:
    token = tokens("example.com", "admin")
    response = client.get("/api/batch-photos/logs", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": ""}, {"Authorization": "frk_wrong"}, {"Authorization": "Bearer frk_wrong"}],
    ids=["missing", "empty", "wrong", "wrong-bearer"],
)
def test_missing_or_wrong_tokens_get_401_with_the_error_body(client: httpx.Client, headers: dict[str, str]) -> None:
    response = client.get("/api/batch-photos/logs", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["success"] is False
    assert body["error"]


def test_a_revoked_token_gets_401(
    client: httpx.Client, tokens: Callable[..., str], sessions: sessionmaker[Session]
) -> None:
    token = tokens("example.com", "user")
    assert client.get("/api/auth/me", headers=auth(token)).status_code == 200
    with sessions.begin() as session:
        row = session.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).one()
        revoke_token(session, row.id)
    response = client.get("/api/auth/me", headers=auth(token))
    assert response.status_code == 401
    assert response.json()["success"] is False


def test_a_user_token_gets_403_on_an_admin_route(client: httpx.Client, tokens: Callable[..., str]) -> None:
    token = tokens("example.com", "user")
    response = client.get("/api/identities", headers=auth(token))
    assert response.status_code == 403
    assert response.json() == {"success": False, "error": "This action requires an admin token"}
