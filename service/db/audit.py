"""The audit trail: recording admin actions and reading them back, per domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import AuditEvent

CLI_ACTOR = "cli"
ALL_DOMAINS = "*"  # an action over every domain (a prune without --domain)


def record(
    sessions: sessionmaker[Session],
    domain: str,
    action: str,
    *,
    target: str = "",
    status: int = 0,
    token_id: int | None = None,
    actor: str = CLI_ACTOR,
    details: dict[str, Any] | None = None,
) -> None:
    """Keep one audit event (its own transaction: it is kept even when the action failed)."""
    with sessions.begin() as session:
        add(session, domain, action, target=target, status=status, token_id=token_id, actor=actor, details=details)


def add(
    session: Session,
    domain: str,
    action: str,
    *,
    target: str = "",
    status: int = 0,
    token_id: int | None = None,
    actor: str = CLI_ACTOR,
    details: dict[str, Any] | None = None,
) -> None:
    """Add one audit event to the session's transaction (kept with the action it records)."""
    session.add(
        AuditEvent(
            domain=domain,
            token_id=token_id,
            actor=actor[:255],
            action=action[:64],
            target=target[:255],
            details=details or {},
            status=status,
        )
    )


def events(session: Session, domain: str | None, since: datetime | None, limit: int) -> list[AuditEvent]:
    """A domain's (or every domain's) events, oldest first, since a time; at most ``limit`` (the newest)."""
    query = select(AuditEvent)
    if domain is not None:
        query = query.where(AuditEvent.domain == domain)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    newest = list(session.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)))
    return newest[::-1]


def prune_events(session: Session, before: datetime) -> int:
    """Delete the events older than ``before``; how many."""
    result = session.execute(delete(AuditEvent).where(AuditEvent.at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
