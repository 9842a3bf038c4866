"""Electing one process for a periodic job through the database (works across workers and replicas, where a
file lock would not)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.common.time import utcnow
from service.db.models import MaintenanceLease


def claim(sessions: sessionmaker[Session], name: str, holder: str, seconds: float) -> bool:
    """Take (or keep) the lease ``name`` for ``seconds`` if nobody else holds an unexpired one."""
    now = utcnow()
    until = now + timedelta(seconds=seconds)
    with sessions.begin() as session:
        # One statement decides: a concurrent claimer's UPDATE waits for this row and then no longer matches.
        taken = session.execute(
            update(MaintenanceLease)
            .where(
                MaintenanceLease.name == name,
                or_(MaintenanceLease.expires_at < now, MaintenanceLease.holder == holder),
            )
            .values(holder=holder, expires_at=until)
        )
        if taken.rowcount:  # type: ignore[attr-defined]
            return True
        if session.get(MaintenanceLease, name) is not None:
            return False
    try:
        with sessions.begin() as session:
            session.add(MaintenanceLease(name=name, holder=holder, expires_at=until))
    except IntegrityError:  # another process created it first
        return False
    return True
