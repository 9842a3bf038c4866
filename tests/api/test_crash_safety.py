"""Killing the server (SIGKILL) mid-batch or mid-enrollment leaves SQL and the index consistent."""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from service.gallery.gallery import Gallery
from service.search.store import IndexStore
from service.settings import Settings
from tests.conftest import FACES, KNN, ServerProcess, auth, photo_files

BIG = FACES / "facenet_pytorch" / "data" / "test_images" / "shea_whigham" / "1.jpg"


@pytest.fixture
def served(facerec_env: dict[str, str]) -> Iterator[ServerProcess]:
    """A server whose log shows each photo's progress, so the test can kill it at a known point."""
    server = ServerProcess({**facerec_env, "FACEREC_LOG_LEVEL": "DEBUG"})
    yield server
    server.stop()


def variants(count: int) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Distinct JPEG files of one face (different bytes, so none is a duplicate of another)."""
    source = Image.open(KNN / "train" / "obama" / "obama.jpg").convert("RGB")
    parts = []
    for i in range(count):
        buffer = io.BytesIO()
        source.rotate(i * 0.5).save(buffer, "JPEG", quality=80 + i % 15)
        parts.append(("photos[]", (f"obama_{i}.jpg", buffer.getvalue(), "image/jpeg")))
    return parts


def send_and_kill(served: ServerProcess, progress: str, file: str, method: str, path: str, **kwargs) -> None:  # type: ignore[no-untyped-def]
    """Send a request in the background and SIGKILL the server as soon as it logs ``progress`` for one of its
    photos (named ``file...``): the first of 40 photos is done, so the rest of the work (and its commit) is still
    ahead."""

    def send() -> None:
        with contextlib.suppress(httpx.TransportError):  # the server dies under the request, as intended
            httpx.request(method, served.url + path, timeout=120, **kwargs)

    sender = threading.Thread(target=send)
    sender.start()
    # The earlier request logged ``progress`` too, and its lines may still be queued: wait for this request's.
    while f"file='{file}" not in served.wait_for_log(progress):
        pass
    served.kill()
    sender.join()


def test_a_batch_killed_midway_leaves_no_partial_batch(served: ServerProcess, admin: str) -> None:
    served.start()
    token = admin
    with httpx.Client(base_url=served.url, timeout=120) as http:
        done = http.post(
            "/api/batch-photos/recognize", headers=auth(token), files=photo_files(KNN / "test" / "obama1.jpg")
        )
        assert done.status_code == 200
    send_and_kill(
        served,
        "photo detected",
        BIG.name,
        "POST",
        "/api/batch-photos/recognize",
        headers=auth(token),
        files=photo_files(*[BIG] * 40),
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
    served: ServerProcess, admin: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    served.start()
    token = admin
    with httpx.Client(base_url=served.url, timeout=120) as http:
        ok = http.post(
            "/api/identities",
            headers=auth(token),
            data={"name": "biden"},
            files=photo_files(*sorted((KNN / "train" / "biden").iterdir())),
        )
        assert ok.status_code == 201
    send_and_kill(
        served,
        "enrollment photo read",
        "obama_",
        "POST",
        "/api/identities",
        headers=auth(token),
        data={"name": "obama"},
        files=variants(40),
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

    gallery = Gallery(sessions, IndexStore(settings.index_dir, 512, "buffalo_s"))
    check = gallery.verify("example.com", repair=False)
    assert check.consistent, check.problems
