"""Old batches are pruned by the running service, by one process of all (#21) — real database, real servers."""

from __future__ import annotations

import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.batches.retention import RetentionTask
from service.cli import main
from service.common.time import utcnow
from service.db import leases
from service.db.audit import events, record
from service.db.leases import claim
from service.db.models import AuditEvent, Batch, BatchFace
from tests.conftest import KNN, ServerProcess


def old_batches(env: dict[str, str], tmp_path: Path, sessions: sessionmaker[Session], ages: list[int]) -> list[str]:
    """Batches of one photo recognised through the CLI, then made ``ages`` days old."""
    ids = []
    for number, age in enumerate(ages):
        folder = tmp_path / f"batch{number}"
        folder.mkdir()
        shutil.copy(KNN / "test" / "obama1.jpg", folder / "obama1.jpg")
        output = CliRunner().invoke(main, ["recognize", str(folder), "--domain", "example.com"], env=env).output
        batch_id = next(line.split()[1].rstrip(":") for line in output.splitlines() if line.startswith("batch "))
        with sessions.begin() as session:
            session.execute(update(Batch).where(Batch.id == batch_id).values(created_at=utcnow() - timedelta(days=age)))
        ids.append(batch_id)
    return ids


def remaining(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(select(Batch.id)))


def test_one_claimer_holds_the_lease_until_it_expires(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lease's clock is moved by hand: on the real one, a slow transaction between the first two claims
    # (more than the 0.5 s lease on a loaded machine) let "b" in early.
    now = [utcnow()]
    monkeypatch.setattr(leases, "utcnow", lambda: now[0])
    assert claim(sessions, "job", "a", 0.5)
    assert not claim(sessions, "job", "b", 0.5)
    now[0] += timedelta(seconds=0.4)
    assert not claim(sessions, "job", "b", 0.5)  # still within the lease
    assert claim(sessions, "job", "a", 0.5)  # the holder renews: now 0.5 s from here
    now[0] += timedelta(seconds=0.4)
    assert not claim(sessions, "job", "b", 0.5)  # past the first lease's end, within the renewed one
    now[0] += timedelta(seconds=0.2)
    assert claim(sessions, "job", "b", 0.5)


def test_two_processes_pruning_at_once_do_the_work_once(
    facerec_env: dict[str, str], tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    ids = old_batches(facerec_env, tmp_path, sessions, [40, 35, 1])
    tasks = [RetentionTask(sessions, days=30, interval=60) for _ in range(2)]
    start = threading.Barrier(2)
    reports: list[object] = [None, None]

    def round_of(number: int) -> None:
        start.wait()
        reports[number] = tasks[number].run_once()

    threads = [threading.Thread(target=round_of, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    done = [r for r in reports if r is not None]
    assert len(done) == 1  # the other did not hold the lease
    assert (done[0].batches, done[0].faces) == (2, 2)  # type: ignore[attr-defined]
    assert remaining(sessions) == [ids[2]]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(BatchFace).where(BatchFace.batch_id.in_(ids[:2]))) == 0


def test_a_server_with_two_workers_prunes_old_batches_once_without_errors(
    facerec_env: dict[str, str], tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    ids = old_batches(facerec_env, tmp_path, sessions, [45, 31, 2])
    env = {
        **facerec_env,
        "FACEREC_BATCH_RETENTION_DAYS": "30",
        "FACEREC_RETENTION_INTERVAL_SECONDS": "1",
        "FACEREC_LOG_LEVEL": "INFO",
    }
    with ServerProcess(env, "--workers", "2") as server:
        line = server.wait_for_log("pruned ", seconds=120)
        assert "pruned 2 batches" in line
        time.sleep(3)  # several more rounds in both workers
        later = server.drain_log()
    assert remaining(sessions) == [ids[2]]
    assert not [text for text in later if "pruned " in text or "ERROR" in text or "Traceback" in text]


def test_audit_events_older_than_their_retention_are_pruned(sessions: sessionmaker[Session]) -> None:
    record(sessions, "d", "enroll", target="identity 1")
    record(sessions, "d", "rename", target="identity 1")
    with sessions.begin() as session:
        first = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).first()
        assert first is not None
        first.at = utcnow() - timedelta(days=100)
    RetentionTask(sessions, days=None, interval=60, audit_days=90).run_once()
    with sessions() as session:
        assert [e.action for e in events(session, "d", None, 10)] == ["rename"]
