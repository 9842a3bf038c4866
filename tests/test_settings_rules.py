"""Configuration rules: the documented defaults and limits, where settings come from and in which order, how
relative paths resolve, and the figures derived from them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service import settings as settings_module
from service.settings import ConfigFileError, Settings, find_config_file


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No FACEREC_* variable from outside, and an empty current folder."""
    for name in list(os.environ):
        if name.startswith("FACEREC_"):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_the_documented_defaults() -> None:
    settings = Settings()
    assert settings.database_url == f"sqlite:///{Path.cwd() / 'storage' / 'facerec.db'}"
    assert (settings.storage_dir, settings.index_dir) == (Path.cwd() / "storage", Path.cwd() / "index")
    assert settings.match_threshold == 70.0
    assert (settings.max_batch_size, settings.max_file_mb) == (100, 10.0)
    assert (settings.max_faces_per_photo, settings.max_faces_per_batch) == (100, 1000)
    assert settings.auth_failures_per_minute == 30
    assert settings.auto_migrate is True
    assert (settings.config, settings.model_dir, settings.metrics_token) == (None, None, None)


def test_the_file_size_limit_is_in_mebibytes() -> None:
    assert Settings().max_file_bytes == 10 * 1024 * 1024
    assert Settings(max_file_mb=0.5).max_file_bytes == 512 * 1024
    assert Settings(max_file_mb=1.0000001).max_file_bytes == 1048576  # whole bytes, rounded down


def test_a_request_body_may_hold_a_full_batch_of_maximal_files_plus_a_mebibyte_of_form() -> None:
    assert Settings().max_upload_bytes == 100 * 10 * 1024 * 1024 + 1024 * 1024
    assert Settings(max_batch_size=3, max_file_mb=2).max_upload_bytes == 3 * 2 * 1024 * 1024 + 1024 * 1024


def test_cors_origins_are_a_trimmed_comma_separated_list_without_trailing_slashes() -> None:
    settings = Settings(cors_allow_origins=" https://a.example/ ,https://b.example:8443,, ,*")
    assert settings.cors_origins == ["https://a.example", "https://b.example:8443", "*"]
    assert Settings().cors_origins == []


def test_inference_threads_default_to_the_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_module.os, "cpu_count", lambda: 6)
    assert Settings().inference_threads == 6
    monkeypatch.setattr(settings_module.os, "cpu_count", lambda: None)
    assert Settings().inference_threads == 1


# ----- where settings come from -------------------------------------------------------------------------
def test_arguments_beat_the_environment_which_beats_the_config_file(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    (clean_environment / "facerec.env").write_text("FACEREC_MAX_BATCH_SIZE=7\nFACEREC_MATCH_THRESHOLD=55\n")
    assert (Settings().max_batch_size, Settings().match_threshold) == (7, 55.0)
    monkeypatch.setenv("FACEREC_MAX_BATCH_SIZE", "8")
    assert (Settings().max_batch_size, Settings().match_threshold) == (8, 55.0)
    assert Settings(max_batch_size=9).max_batch_size == 9


def test_the_config_file_is_facerec_env_in_facerec_home_else_the_current_folder(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path, tmp_path: Path
) -> None:
    assert find_config_file() is None
    here = clean_environment / "facerec.env"
    here.write_text("FACEREC_MAX_BATCH_SIZE=7\n")
    assert find_config_file() == here
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("FACEREC_HOME", str(home))
    assert find_config_file() is None  # FACEREC_HOME set: the current folder is not looked at
    (home / "facerec.env").write_text("FACEREC_MAX_BATCH_SIZE=5\n")
    assert find_config_file() == home / "facerec.env"
    assert Settings().max_batch_size == 5


def test_facerec_config_names_the_file_which_must_exist(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path, tmp_path: Path
) -> None:
    named = tmp_path / "elsewhere.env"
    named.write_text("FACEREC_MAX_BATCH_SIZE=3\n")
    (clean_environment / "facerec.env").write_text("FACEREC_MAX_BATCH_SIZE=7\n")
    monkeypatch.setenv("FACEREC_CONFIG", str(named))
    assert find_config_file() == named
    assert Settings().max_batch_size == 3
    assert Settings().config == named
    monkeypatch.setenv("FACEREC_CONFIG", str(tmp_path / "missing.env"))
    with pytest.raises(ConfigFileError, match=r"FACEREC_CONFIG names .*missing\.env, which is not a file"):
        find_config_file()


def test_a_config_file_given_as_an_argument_is_read(tmp_path: Path) -> None:
    named = tmp_path / "given.env"
    named.write_text("FACEREC_MAX_BATCH_SIZE=4\n")
    assert find_config_file(named) == named
    assert find_config_file(str(named)) == named
    settings = Settings(config=named)
    assert (settings.max_batch_size, settings.config) == (4, named)


# ----- relative paths -----------------------------------------------------------------------------------
def test_relative_paths_resolve_against_facerec_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "data"
    monkeypatch.setenv("FACEREC_HOME", str(home))
    monkeypatch.setenv("FACEREC_MODEL_DIR", "models/pack")
    settings = Settings()
    assert settings.home == home
    assert (settings.storage_dir, settings.index_dir) == (home / "storage", home / "index")
    assert settings.model_dir == home / "models" / "pack"
    assert settings.database_url == f"sqlite:///{home / 'storage' / 'facerec.db'}"


def test_relative_paths_resolve_against_the_config_file_s_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "site.env").write_text("FACEREC_STORAGE_DIR=var\nFACEREC_DATABASE_URL=sqlite:///db/f.db\n")
    settings = Settings(config=folder / "site.env")
    assert settings.home == folder
    assert settings.storage_dir == folder / "var"
    assert settings.index_dir == folder / "index"
    assert settings.database_url == f"sqlite:///{folder / 'db' / 'f.db'}"


def test_a_relative_home_is_taken_from_the_current_folder(clean_environment: Path) -> None:
    settings = Settings(home=Path("data"))
    assert settings.home == clean_environment / "data"
    assert settings.storage_dir == clean_environment / "data" / "storage"


def test_absolute_paths_and_server_databases_are_kept_as_given(tmp_path: Path) -> None:
    settings = Settings(
        storage_dir=tmp_path / "s",
        index_dir=tmp_path / "i",
        model_dir=tmp_path / "m",
        database_url="postgresql://u:p@db.example/facerec",
    )
    assert (settings.storage_dir, settings.index_dir, settings.model_dir) == (
        tmp_path / "s",
        tmp_path / "i",
        tmp_path / "m",
    )
    assert settings.database_url == "postgresql://u:p@db.example/facerec"
    assert Settings().model_dir is None
