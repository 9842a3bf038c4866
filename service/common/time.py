"""Timestamps as the service stores and shows them."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Naive UTC now; every timestamp in the database is naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def format_timestamp(value: datetime) -> str:
    """ISO 8601 with microseconds, as the spec shows (``2023-12-15T14:30:22.123456``)."""
    return value.isoformat(timespec="microseconds")
