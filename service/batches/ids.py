"""Batch ids: UTC time plus four random digits, e.g. ``20231215_143022_1234``."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

BATCH_ID_PATTERN = re.compile(r"\d{8}_\d{6}_\d{4}")


def new_batch_id(moment: datetime) -> str:
    """A batch id for ``moment`` (UTC); uniqueness is enforced by the database, which retries on clash."""
    return f"{moment:%Y%m%d_%H%M%S}_{secrets.randbelow(10_000):04d}"


def is_batch_id(value: str) -> bool:
    """Whether ``value`` has the shape of a batch id, and nothing more."""
    # fullmatch, not match with ``$``: ``$`` also matches before a trailing newline ("..._1234\n").
    return BATCH_ID_PATTERN.fullmatch(value) is not None
