"""The facerec command, end to end in a temporary data folder."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from service.cli import main
from service.db.migrate import is_up_to_date
from service.db.session import create_db_engine
from tests.conftest import KNN, free_port, wait_until_healthy


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    """FACEREC_* variables for a fresh data folder."""
    return {
        "FACEREC_DATABASE_URL": database_url,
        "FACEREC_STORAGE_DIR": str(tmp_path / "storage"),
        "FACEREC_INDEX_DIR": str(tmp_path / "index"),
        "FACEREC_LOG_LEVEL": "WARNING",
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_db_upgrade_brings_a_new_database_to_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    code, output = run({"FACEREC_DATABASE_URL": url}, "db", "upgrade")
    assert code == 0, output
    engine = create_db_engine(url)
    assert is_up_to_date(engine, url)
    engine.dispose()


def test_token_create_prints_the_token_alone_on_its_last_line_and_list_never_shows_it(env: dict[str, str]) -> None:
    code, output = run(env, "token", "create", "--domain", "acme.test", "--admin", "--name", "ops")
    assert code == 0, output
    token = output.strip().splitlines()[-1]
    assert token.startswith("frk_")
    assert " " not in token
    code, listing = run(env, "token", "list")
    assert code == 0
    assert "acme.test" in listing
    assert "admin" in listing
    assert "ops" in listing
    assert token not in listing


def test_token_revoke_marks_the_token_revoked_and_refuses_unknown_ids(env: dict[str, str]) -> None:
    run(env, "token", "create", "--domain", "acme.test")
    code, output = run(env, "token", "revoke", "1")
    assert code == 0, output
    assert "revoked" in run(env, "token", "list")[1]
    assert run(env, "token", "revoke", "1")[0] == 1
    assert run(env, "token", "revoke", "99")[0] == 1


def test_enroll_then_recognize_writes_the_right_names_to_the_csv(env: dict[str, str], tmp_path: Path) -> None:
    code, output = run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    assert code == 0, output
    assert "enrolled 9 face(s) for 5 of 5 people" in output
    out = tmp_path / "out.csv"
    code, output = run(env, "recognize", str(KNN / "test"), "--domain", "example.com", "--csv", str(out))
    assert code == 0, output
    rows = {row["Filename"]: row for row in csv.DictReader(io.StringIO(out.read_text()))}
    assert rows["obama1.jpg"]["Primary Person"] == "obama"
    assert rows["alex_lacamoire1.jpg"]["Primary Person"] == "alex_lacamoire"
    assert rows["johnsnow_test1.jpg"]["Primary Person"] == "kit_harington"
    assert rows["obama_and_biden.jpg"]["Face Count"] == "3"
    assert all(row["Recognized"] == "Yes" for row in rows.values())


def test_enroll_again_needs_update_to_add_photos(env: dict[str, str]) -> None:
    assert run(env, "enroll", str(KNN / "train"), "--domain", "example.com")[0] == 0
    code, output = run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    assert code == 1
    assert "use --update" in output
    code, output = run(env, "enroll", str(KNN / "train"), "--domain", "example.com", "--update")
    assert code == 1  # every photo is already enrolled: nothing new
    assert "already enrolled" in output


def test_identities_list_shows_people_with_face_counts(env: dict[str, str]) -> None:
    run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    code, output = run(env, "identities", "list", "--domain", "example.com")
    assert code == 0
    assert "obama" in output
    assert "5 people" in output


def test_index_rebuild_reports_the_faces_per_domain(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    for file in (tmp_path / "index").glob("*.npz"):
        file.unlink()
    code, output = run(env, "index", "rebuild")
    assert code == 0, output
    assert "example.com: 9 faces of 5 people" in output
    assert list((tmp_path / "index").glob("*.npz"))


def test_serve_migrates_and_serves_a_healthy_api(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "FACEREC_DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
        "FACEREC_STORAGE_DIR": str(tmp_path / "storage"),
        "FACEREC_INDEX_DIR": str(tmp_path / "index"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        response = wait_until_healthy(f"http://127.0.0.1:{port}", process)
        assert response.status_code == 200
        assert response.json()["status"] == "healthy"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_index_verify_says_ok_when_the_files_agree_with_sql(env: dict[str, str]) -> None:
    run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    code, output = run(env, "index", "verify", "--no-repair")
    assert code == 0, output
    assert "example.com: ok (9 faces" in output


def test_index_verify_finds_and_repairs_an_index_that_lost_a_face(env: dict[str, str], tmp_path: Path) -> None:
    from service.search.store import IndexStore

    run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    store = IndexStore(tmp_path / "index", 512, "buffalo_s")
    found = store.read_file("example.com")
    assert found is not None
    index, version = found
    index.remove(np.array([1]))
    store._write("example.com", index, version)  # same version, one face short: what a torn update could leave

    code, output = run(env, "index", "verify", "--no-repair")
    assert code == 1
    assert "1 face(s) in SQL but not in the index" in output
    code, output = run(env, "index", "verify")
    assert code == 0
    assert "repaired: rebuilt from SQL (9 faces)" in output
    assert "example.com: ok" in run(env, "index", "verify", "--no-repair")[1]


def test_index_verify_rebuilds_a_missing_index_file(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    for file in (tmp_path / "index").glob("*.npz"):
        file.unlink()
    code, output = run(env, "index", "verify")
    assert code == 0
    assert "no readable index file" in output
    assert "repaired" in output
