"""Deleting old batches: on demand (``facerec batches prune``) and by the running service
(``FACEREC_BATCH_RETENTION_DAYS``), each batch with its entries, stored faces and corrections in one
transaction, so a crash midway leaves every batch whole or gone."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from service.common.time import utcnow
from service.db import audit as audit_queries
from service.db import batches as batch_queries
from service.db.batches import PruneReport
from service.db.leases import claim

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


class RetentionTask:
    """Prunes batches older than ``days`` every ``interval`` seconds in a background thread — in one process
    of all those sharing the database (the holder of the SQL lease), so workers and replicas never double up."""

    LEASE = "batch-retention"

    def __init__(
        self, sessions: sessionmaker[Session], days: float | None, interval: float, audit_days: float | None = None
    ) -> None:
        self.sessions = sessions
        self.days = days
        self.audit_days = audit_days
        self.interval = interval
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="batch-retention", daemon=True)

    def start(self) -> None:
        """Begin pruning periodically."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current round."""
        self._stop.set()
        self._thread.join(timeout=30)

    def run_once(self) -> PruneReport | None:
        """One round: prune if this process holds the lease; None if another does."""
        if not claim(self.sessions, self.LEASE, self.holder, self.interval * 0.9):
            return None
        if self.audit_days is not None:
            with self.sessions.begin() as session:
                audit_queries.prune_events(session, cutoff(self.audit_days))
        if self.days is None:
            return PruneReport(0, 0, 0, 0)
        report = prune(self.sessions, cutoff(self.days))
        if report.batches:
            audit_queries.record(
                self.sessions,
                audit_queries.ALL_DOMAINS,
                "prune batches",
                actor="retention",
                details={"older_than_days": self.days, "batches": report.batches, "faces": report.faces},
            )
        return report

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the next round retries; the service keeps serving
                logger.exception("batch retention round failed")
            self._stop.wait(self.interval)
