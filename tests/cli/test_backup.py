"""Backup while batches are written, and restore into an empty data folder (#21) — real servers, SQLite and
PostgreSQL (pg_dump/pg_restore)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.cli import main
from service.db.models import ApiToken, Batch, BatchEntry, Face, Identity
from service.db.session import create_db_engine, create_session_factory, sqlite_file
from tests.conftest import KNN, ServerProcess, _pg_admin, _pg_url, auth, enroll_knn_train, photo_files


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def empty_target(database_url: str, tmp_path: Path) -> dict[str, str]:
    """Settings for a new, empty data folder (and database) to restore into."""
    folder = tmp_path / "restored"
    if sqlite_file(database_url) is not None:
        url = f"sqlite:///{folder / 'facerec.db'}"
    else:
        name = f"restore_{uuid.uuid4().hex[:10]}"
        _pg_admin(f'CREATE DATABASE "{name}"')
        url = _pg_url(name)
    return {"FACEREC_DATABASE_URL": url, "FACEREC_STORAGE_DIR": str(folder), "FACEREC_INDEX_DIR": str(folder / "index")}


def consistent(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Counts of what matters, after checking every batch holds exactly the entries it says."""
    with sessions() as session:
        for batch in session.scalars(select(Batch)):
            entries = session.scalar(
                select(func.count()).select_from(BatchEntry).where(BatchEntry.batch_id == batch.id)
            )
            assert entries == batch.total_processed, f"batch {batch.id} is partial"
        return {
            table.__tablename__: int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in (Batch, BatchEntry, Identity, Face, ApiToken)
        }


def test_a_backup_taken_during_a_batch_restores_consistently_and_recognises_as_before(
    facerec_env: dict[str, str], admin: str, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    if sqlite_file(facerec_env["FACEREC_DATABASE_URL"]) is None and shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed here (the command says so: tested below)")
    env = {**facerec_env, "FACEREC_LOG_LEVEL": "INFO"}
    photos = photo_files(*sorted((KNN / "test").iterdir())) * 10  # 50 photos
    with ServerProcess(env) as server, httpx.Client(base_url=server.url, timeout=300) as client:
        enroll_knn_train(client, admin)
        done = threading.Event()

        def upload() -> None:
            client.post("/api/batch-photos/recognize", headers=auth(admin), files=photos)
            done.set()

        sender = threading.Thread(target=upload)
        sender.start()
        server.wait_for_log("photo processed")  # the batch is on its way, not stored yet
        code, output = run(env, "backup", str(tmp_path / "facerec.backup"))
        assert code == 0, output
        sender.join(timeout=300)
        assert done.is_set()
    target = {**facerec_env, **empty_target(facerec_env["FACEREC_DATABASE_URL"], tmp_path)}
    code, output = run(target, "restore", str(tmp_path / "facerec.backup"))
    assert code == 0, output
    engine = create_db_engine(target["FACEREC_DATABASE_URL"])
    try:
        restored = consistent(create_session_factory(engine))
    finally:
        engine.dispose()
    now = consistent(sessions)
    # The batch was either complete at the backup (and is restored whole) or not yet stored (and is absent).
    assert restored["batch_entries"] in (0, 50)
    assert (restored["identities"], restored["faces"], restored["api_tokens"]) == (
        now["identities"],
        now["faces"],
        now["api_tokens"],
    )
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "obama1.jpg").write_bytes((KNN / "test" / "obama1.jpg").read_bytes())
    code, output = run(target, "recognize", str(probe), "--domain", "example.com")
    assert code == 0, output
    assert "persons: obama" in output


def test_restore_refuses_a_database_that_holds_data(facerec_env: dict[str, str], tmp_path: Path) -> None:
    code, output = run(facerec_env, "backup", str(tmp_path / "copy"))
    assert code == 0, output
    result = CliRunner().invoke(main, ["restore", str(tmp_path / "copy")], env=facerec_env)
    assert result.exit_code != 0
    assert "restore into an empty" in result.output


def test_a_backup_never_overwrites_a_file(facerec_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "there").write_text("keep me")
    result = CliRunner().invoke(main, ["backup", str(tmp_path / "there")], env=facerec_env)
    assert result.exit_code != 0
    assert "exists" in result.output
    assert (tmp_path / "there").read_text() == "keep me"


def test_without_pg_dump_a_postgresql_backup_says_what_to_install(tmp_path: Path) -> None:
    from service.db.backup import BackupError, backup

    with pytest.raises((BackupError, subprocess.CalledProcessError)) as refused:
        backup("postgresql://nobody@127.0.0.1:1/none", tmp_path / "copy")
    if shutil.which("pg_dump") is None:
        assert isinstance(refused.value, BackupError)
        assert "pg_dump is not installed" in str(refused.value)
    else:  # pg_dump is installed here: it ran and could not reach that server
        assert isinstance(refused.value, subprocess.CalledProcessError)
