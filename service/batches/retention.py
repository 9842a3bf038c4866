"""Deleting old batches: on demand (``facerec batches prune``) and by the running service
(``FACEREC_BATCH_RETENTION_DAYS``), each batch with its entries, stored faces and corrections in one
transaction, so a crash midway leaves every batch whole or gone."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from service.common.time import utcnow
from service.db import batches as batch_queries
from service.db.batches import PruneReport

logger = logging.getLogger("service.batches")


def cutoff(days: float, now: datetime | None = None) -> datetime:
    """The creation time before which batches are older than ``days``."""
    return (now or utcnow()) - timedelta(days=days)


def prune(
    sessions: sessionmaker[Session], older_than: datetime, *, domain: str | None = None, dry_run: bool = False
) -> PruneReport:
    """Delete (or with ``dry_run`` only count) the batches created before ``older_than``."""
    with sessions() as session:
        batch_ids = batch_queries.batches_before(session, older_than, domain)
        report = batch_queries.prune_report(session, batch_ids)
    if dry_run:
        return report
    for batch_id in batch_ids:
        with sessions.begin() as session:
            batch_queries.delete_batch_by_id(session, batch_id)
    if batch_ids:
        logger.info(
            "pruned %d batches older than %s (%d entries, %d faces, %d bytes)",
            report.batches, older_than.isoformat(timespec="seconds"), report.entries, report.faces, report.bytes,
        )  # fmt: skip
    return report
