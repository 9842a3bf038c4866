"""Killing the server (SIGKILL) mid-batch or mid-enrollment leaves SQL and the index consistent."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from service.db.session import create_db_engine, create_session_factory
from service.db.tokens import create_token
from service.gallery.gallery import Gallery
from service.search.store import IndexStore
from tests.conftest import FACES, KNN, auth, free_port, photo_files, wait_until_healthy

BIG = FACES / "facenet_pytorch" / "data" / "test_images" / "shea_whigham" / "1.jpg"


class Served:
    """``facerec serve`` in a subprocess that a test may kill."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_until_healthy(self.url, self.process).status_code == 200

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[Served]:
    env = {
        **os.environ,
        "FACEREC_DATABASE_URL": database_url,
        "FACEREC_STORAGE_DIR": str(tmp_path / "storage"),
        "FACEREC_INDEX_DIR": str(tmp_path / "index"),
        "FACEREC_LOG_LEVEL": "WARNING",
    }
    server = Served(env)
    yield server
    server.stop()


def admin_token(database_url: str) -> str:
    engine = create_db_engine(database_url)
    with create_session_factory(engine).begin() as session:
        _, secret = create_token(session, "example.com", "admin")
    engine.dispose()
    return secret


def variants(count: int) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Distinct JPEG files of one face (different bytes, so none is a duplicate of another)."""
    source = Image.open(KNN / "train" / "obama" / "obama.jpg").convert("RGB")
    parts = []
    for i in range(count):
        buffer = io.BytesIO()
        source.rotate(i * 0.5).save(buffer, "JPEG", quality=80 + i % 15)
        parts.append(("photos[]", (f"obama_{i}.jpg", buffer.getvalue(), "image/jpeg")))
    return parts


def send_and_kill(served: Served, method: str, path: str, seconds: float, **kwargs) -> None:  # type: ignore[no-untyped-def]
    """Send a request in the background and SIGKILL the server while it is working on it."""

    def send() -> None:
        with contextlib.suppress(httpx.TransportError):  # the server dies under the request, as intended
            httpx.request(method, served.url + path, timeout=120, **kwargs)

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(seconds)
    served.kill()
    sender.join()


def test_a_batch_killed_midway_leaves_no_partial_batch(served: Served, database_url: str) -> None:
    served.start()
    token = admin_token(database_url)
    with httpx.Client(base_url=served.url, timeout=120) as http:
        done = http.post(
            "/api/batch-photos/recognize", headers=auth(token), files=photo_files(KNN / "test" / "obama1.jpg")
        )
        assert done.status_code == 200
    send_and_kill(
        served, "POST", "/api/batch-photos/recognize", 1.5, headers=auth(token), files=photo_files(*[BIG] * 40)
    )

    served.start()
    with httpx.Client(base_url=served.url, timeout=120) as http:
        listing = http.get("/api/batch-photos/logs", headers=auth(token)).json()
        for batch in listing["batches"]:
            log = http.get(f"/api/batch-photos/logs/{batch['batch_id']}", headers=auth(token)).json()
            assert len(log["entries"]) == batch["total_photos"] == log["total_photos"]
        assert done.json()["batch_id"] in {b["batch_id"] for b in listing["batches"]}
        assert http.get("/api/batch-photos/health").json()["status"] == "healthy"


def test_an_enrollment_killed_midway_leaves_sql_and_index_in_agreement(
    served: Served, database_url: str, tmp_path: Path
) -> None:
    served.start()
    token = admin_token(database_url)
    with httpx.Client(base_url=served.url, timeout=120) as http:
        ok = http.post(
            "/api/identities",
            headers=auth(token),
            data={"name": "biden"},
            files=photo_files(*sorted((KNN / "train" / "biden").iterdir())),
        )
        assert ok.status_code == 201
    send_and_kill(
        served, "POST", "/api/identities", 1.0, headers=auth(token), data={"name": "obama"}, files=variants(40)
    )

    served.start()
    with httpx.Client(base_url=served.url, timeout=120) as http:
        people = http.get("/api/identities", headers=auth(token)).json()["identities"]
        for person in people:
            assert person["face_count"] >= 1  # nobody without faces: an enrollment is one transaction
        body = http.post(
            "/api/batch-photos/recognize", headers=auth(token), files=photo_files(KNN / "test" / "obama_and_biden.jpg")
        ).json()
        assert body["success"] is True

    engine = create_db_engine(database_url)
    gallery = Gallery(create_session_factory(engine), IndexStore(tmp_path / "index", 512, "buffalo_s"))
    check = gallery.verify("example.com", repair=False)
    engine.dispose()
    assert check.consistent, check.problems
