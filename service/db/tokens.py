"""API token queries: tokens are random secrets shown once; SQL keeps only their SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.common.time import utcnow
from service.db.models import ApiToken

Role = Literal["user", "admin"]
ROLES: tuple[Role, ...] = ("user", "admin")
LAST_USED_RESOLUTION = timedelta(minutes=1)  # how stale a token's last_used_at may be


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's domain (tenant) and role."""

    token_id: int
    domain: str
    role: Role
    name: str = ""  # the token's label (who, in the audit trail)

    @property
    def is_admin(self) -> bool:
        """Whether the token may manage the gallery."""
        return self.role == "admin"


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, domain: str, role: Role, name: str = "") -> tuple[ApiToken, str]:
    """Create a token; returns the stored row and the secret, which is never stored."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    domain = domain.strip()
    if not domain:
        raise ValueError("domain must not be empty")
    secret = "frk_" + secrets.token_urlsafe(32)
    row = ApiToken(domain=domain, role=role, name=name, token_hash=hash_token(secret))
    session.add(row)
    session.flush()
    return row, secret


def authenticate(session: Session, secret: str) -> Principal | None:
    """The principal of a valid, unrevoked token, or None; records its last use (to the minute)."""
    digest = hash_token(secret)
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    # The lookup is by hash, so timing reveals nothing about the secret; compare anyway in constant time.
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest):
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        # At most one write a minute per token: a GET must not cost a write transaction every time.
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    return Principal(token_id=row.id, domain=row.domain, role=row.role, name=row.name)  # type: ignore[arg-type]


def list_tokens(session: Session, domain: str | None = None) -> list[ApiToken]:
    """All tokens, optionally of one domain, oldest first."""
    query = select(ApiToken).order_by(ApiToken.id)
    if domain is not None:
        query = query.where(ApiToken.domain == domain)
    return list(session.scalars(query))


def revoke_token(session: Session, token_id: int) -> bool:
    """Revoke a token by id; False if there is no such active token."""
    result = session.execute(
        update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
