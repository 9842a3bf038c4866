"""Health checks what it reports (models, index, database) and answers 503 unless all is well; it does not
show internals such as the process id to anonymous callers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.api.state import Services
from service.db.gallery import bump_version
from service.settings import Settings
from tests.conftest import KNN, auth, photo_files

HEALTH = "/api/batch-photos/health"


def services_of(client: TestClient[Litestar]) -> Services:
    """The running app's services (the app runs in this process)."""
    services: Services = client.app.state.services
    return services


def test_anonymous_health_does_not_show_the_worker_pid(client: httpx.Client) -> None:
    body = client.get(HEALTH).json()
    assert body["status"] == "healthy"
    assert "worker_pid" not in body
    assert str(os.getpid()) not in client.get(HEALTH).text


def test_an_admin_token_sees_which_worker_answered_and_a_user_token_does_not(
    client: httpx.Client, tokens: Callable[..., str]
) -> None:
    admin = client.get("/api/auth/me", headers=auth(tokens(role="admin"))).json()
    user = client.get("/api/auth/me", headers=auth(tokens(role="user"))).json()
    assert admin["worker_pid"] == os.getpid()  # the app under test runs in this process
    assert "worker_pid" not in user


def test_models_that_do_not_answer_make_health_503_unhealthy(
    client: TestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_crops: object) -> np.ndarray:
        raise RuntimeError("onnxruntime session lost")

    monkeypatch.setattr(services_of(client).model, "embed", broken)
    response = client.get(HEALTH)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["models_loaded"] is False
    assert body["database"] == "ok"


def test_repeated_health_checks_do_not_each_run_the_models(
    client: TestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = services_of(client).model
    calls: list[int] = []
    real = model.embed

    def counting(crops: list[np.ndarray]) -> np.ndarray:
        calls.append(len(crops))
        return real(crops)

    monkeypatch.setattr(model, "embed", counting)
    for _ in range(5):  # a load balancer's polling, or anyone's: health needs no token
        assert client.get(HEALTH).json()["models_loaded"] is True
    assert calls == [1]


def test_an_index_that_cannot_be_loaded_makes_health_503_degraded(
    client: TestClient[Litestar], settings: Settings
) -> None:
    # Another worker starts a domain's gallery; this one cannot write that domain's index file.
    sessions: sessionmaker[Session] = services_of(client).sessions
    with sessions.begin() as session:
        bump_version(session, "other.example", [])
    shutil.rmtree(settings.index_dir, ignore_errors=True)
    settings.index_dir.write_text("not a folder")

    response = client.get(HEALTH)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["index_loaded"] is False
    assert body["database"] == "ok"
    assert body["models_loaded"] is True


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_database_that_cannot_be_opened_makes_health_503_unhealthy_until_it_can(
    client: TestClient[Litestar], database_url: str
) -> None:
    path = Path(make_url(database_url).database or "")
    aside = path.with_name("aside.db")
    services_of(client).engine.dispose()  # no open connection keeps the old file reachable
    path.rename(aside)
    path.mkdir()  # SQLite cannot open a folder as a database (a missing file it would create, empty)
    try:
        down = client.get(HEALTH)
    finally:
        path.rmdir()
        aside.rename(path)
    assert down.status_code == 503
    body = down.json()
    assert (body["status"], body["database"], body["index_loaded"]) == ("unhealthy", "unreachable", False)
    assert body["models_loaded"] is True
    up = client.get(HEALTH)
    assert (up.status_code, up.json()["status"], up.json()["database"]) == (200, "healthy", "ok")


def test_health_counts_the_domains_and_faces_the_index_holds(client: httpx.Client, admin: str) -> None:
    before = client.get(HEALTH).json()
    assert (before["indexed_domains"], before["indexed_faces"]) == (0, 0)
    photos = sorted((KNN / "train" / "obama").iterdir())
    enrolled = client.post("/api/identities", headers=auth(admin), data={"name": "Obama"}, files=photo_files(*photos))
    assert enrolled.status_code == 201
    after = client.get(HEALTH).json()
    assert (after["indexed_domains"], after["indexed_faces"]) == (1, len(photos))


def test_log_directory_exists_says_whether_the_storage_folder_is_there(
    client: httpx.Client, settings: Settings
) -> None:
    assert client.get(HEALTH).json()["log_directory_exists"] is True
    shutil.rmtree(settings.storage_dir)
    assert client.get(HEALTH).json()["log_directory_exists"] is False
