"""Where the CLI finds its data, and what it says when the data is not there.

Relative paths resolve against FACEREC_HOME, else the config file's folder, else the current folder.
No command but `db upgrade` creates a database, and none fails with a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from service.cli import main
from service.db import migrate
from service.db.session import create_db_engine, display_url
from tests.conftest import KNN, free_port

FACEREC = Path(sys.executable).with_name("facerec")


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any FACEREC_* variable, plus ``settings``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("FACEREC_")}
    return {**env, **settings}


def facerec(cwd: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `facerec` in ``cwd`` with only the given FACEREC_* settings."""
    return subprocess.run(
        [str(FACEREC), *args], cwd=cwd, env=clean_env(**settings), capture_output=True, text=True, timeout=300
    )


def invoke(*args: str, **settings: str) -> Result:
    """Run the CLI in this process (in the current folder) with only the given FACEREC_* settings."""
    unset: dict[str, str | None] = {name: None for name in os.environ if name.startswith("FACEREC_")}
    return CliRunner().invoke(main, list(args), env={**unset, **settings})


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder (resolved, as the CLI sees it)."""
    path = (tmp_path / "cwd").resolve()
    path.mkdir()
    monkeypatch.chdir(path)
    return path


NEEDS_A_DATABASE = [
    ["token", "list"],
    ["token", "create", "--domain", "example.com"],
    ["token", "revoke", "1"],
    ["identities", "list", "--domain", "example.com"],
    ["index", "verify"],
    ["index", "rebuild"],
    ["enroll", str(KNN / "train"), "--domain", "example.com"],
    ["recognize", str(KNN / "test"), "--domain", "example.com"],
]


@pytest.mark.parametrize("command", NEEDS_A_DATABASE, ids=lambda command: " ".join(command[:2]))
def test_a_command_on_a_missing_database_says_so_in_one_line_and_creates_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    folder = tmp_path.resolve()
    result = facerec(folder, *command)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"no database at sqlite:///{folder}/storage/facerec.db" in result.stderr
    assert "run `facerec db upgrade` to create it" in result.stderr
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(("revision", "problem"), [("base", "has no facerec schema"), ("0001", "has an older schema")])
def test_a_command_on_an_unmigrated_database_says_to_run_db_upgrade(
    database_url: str, revision: str, problem: str
) -> None:
    migrate.downgrade(database_url, revision)
    result = invoke("token", "list", FACEREC_DATABASE_URL=database_url)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"the database at {display_url(database_url)} {problem}: run `facerec db upgrade`" in result.stderr


def test_recognize_does_not_migrate_an_old_database(database_url: str, tmp_path: Path) -> None:
    migrate.downgrade(database_url, "0001")
    result = invoke(
        "recognize",
        str(KNN / "test"),
        "--domain",
        "example.com",
        FACEREC_DATABASE_URL=database_url,
        FACEREC_HOME=str(tmp_path),
    )
    assert result.exit_code == 1
    assert "run `facerec db upgrade`" in result.stderr
    engine = create_db_engine(database_url)
    assert not migrate.is_up_to_date(engine, database_url)
    engine.dispose()


def test_db_upgrade_creates_the_database_under_home_and_says_where(folder: Path) -> None:
    result = invoke("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert f"creating a new database at sqlite:///{folder}/storage/facerec.db" in result.stderr
    assert f"database sqlite:///{folder}/storage/facerec.db is at head" in result.stdout
    assert (folder / "storage" / "facerec.db").is_file()


def test_facerec_home_lets_the_cli_find_the_data_from_any_folder(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "srv", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    assert facerec(home, "db", "upgrade").returncode == 0  # `make run` style: data under the current folder
    assert facerec(home, "token", "create", "--domain", "example.com", "--name", "ops").returncode == 0

    listing = facerec(elsewhere, "token", "list", FACEREC_HOME=str(home))
    assert listing.returncode == 0, listing.stderr
    assert "example.com" in listing.stdout
    assert "ops" in listing.stdout
    assert list(elsewhere.iterdir()) == []


def test_a_config_file_named_by_facerec_config_points_the_cli_at_the_data(tmp_path: Path) -> None:
    data, etc, elsewhere = tmp_path / "data", tmp_path / "etc", tmp_path / "elsewhere"
    for path in (etc, elsewhere):
        path.mkdir()
    (etc / "facerec.env").write_text(f"FACEREC_HOME={data}\n")
    config = str(etc / "facerec.env")
    assert facerec(elsewhere, "db", "upgrade", FACEREC_CONFIG=config).returncode == 0
    assert facerec(elsewhere, "token", "create", "--domain", "example.com", FACEREC_CONFIG=config).returncode == 0

    assert (data / "storage" / "facerec.db").is_file()
    assert "example.com" in facerec(tmp_path, "token", "list", FACEREC_CONFIG=config).stdout
    assert list(elsewhere.iterdir()) == []


def test_relative_paths_in_a_config_file_are_relative_to_its_folder(tmp_path: Path, folder: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "facerec.env").write_text("FACEREC_DATABASE_URL=sqlite:///db/facerec.db\nFACEREC_INDEX_DIR=cache\n")
    result = invoke("config", FACEREC_CONFIG=str(app / "facerec.env"))
    assert result.exit_code == 0, result.output
    assert f"config file  {app / 'facerec.env'}" in result.stdout
    assert f"database     sqlite:///{app}/db/facerec.db  (missing" in result.stdout
    assert f"index        {app}/cache" in result.stdout
    assert f"storage      {app}/storage" in result.stdout


def test_facerec_env_in_the_current_folder_is_read(folder: Path) -> None:
    (folder / "facerec.env").write_text("FACEREC_INDEX_DIR=/var/cache/facerec\n")
    result = invoke("config")
    assert f"config file  {folder / 'facerec.env'}" in result.stdout
    assert "index        /var/cache/facerec" in result.stdout


def test_facerec_env_in_facerec_home_is_read(tmp_path: Path, folder: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "facerec.env").write_text("FACEREC_DATABASE_URL=sqlite:///people.db\n")
    result = invoke("config", FACEREC_HOME=str(home))
    assert f"database     sqlite:///{home}/people.db" in result.stdout


def test_environment_variables_override_the_config_file(folder: Path) -> None:
    (folder / "facerec.env").write_text("FACEREC_INDEX_DIR=from-file\n")
    result = invoke("config", FACEREC_INDEX_DIR="from-env")
    assert f"index        {folder}/from-env" in result.stdout


def test_a_missing_config_file_is_a_one_line_error(folder: Path) -> None:
    result = invoke("token", "list", FACEREC_CONFIG=str(folder / "nope.env"))
    assert result.exit_code == 1
    assert result.stderr == f"Error: FACEREC_CONFIG names {folder / 'nope.env'}, which is not a file\n"


def test_an_invalid_setting_is_a_one_line_error(folder: Path) -> None:
    result = invoke("token", "list", FACEREC_MATCH_THRESHOLD="high")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: invalid setting FACEREC_MATCH_THRESHOLD: Input should be a valid number")


def test_an_unreachable_database_is_a_one_line_error_without_the_password(folder: Path) -> None:
    port = free_port()  # nothing listens there
    result = invoke("token", "list", FACEREC_DATABASE_URL=f"postgresql://facerec:s3cret@127.0.0.1:{port}/facerec")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"Error: database error at postgresql://facerec:***@127.0.0.1:{port}/facerec: ")
    assert "s3cret" not in result.output
