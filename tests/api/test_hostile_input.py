"""Untrusted files and malformed requests: specific errors, good photos kept, never a 5xx."""

from __future__ import annotations

import csv
import io
import os
import struct
import zlib
from collections.abc import Callable

import httpx
import numpy as np
import pytest
from PIL import Image

from service.app import create_app
from service.recognition.faces import FaceModel
from service.settings import Settings
from tests.conftest import KNN, app_client, auth, enroll_knn_train, photo_files

GOOD = (KNN / "test" / "obama1.jpg").read_bytes()


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def bomb_png(side: int = 40000) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 4096))
        + chunk(b"IEND", b"")
    )


def hostile_files() -> list[tuple[str, bytes, str | None]]:
    """(file name, bytes, expected error or None when the file must be processed)."""
    photo = Image.open(io.BytesIO(GOOD)).convert("RGB")
    frames = [photo, photo.rotate(10)]
    sixteen = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
    return [
        ("good.jpg", GOOD, None),
        ("empty.jpg", b"", "File is empty"),
        ("truncated.jpg", GOOD[: len(GOOD) // 2], "corrupt or truncated"),
        ("text.jpg", b"I am not a picture at all", "Unsupported or unrecognised image format"),
        (
            "script.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "SVG images are not supported",
        ),
        ("doc.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj", "PDF documents are not supported"),
        ("bomb.png", bomb_png(), "decompression bomb"),
        ("huge.jpg", GOOD + os.urandom(11 * 1024 * 1024), "File is too large"),
        ("animated.gif", encoded(frames[0], "GIF", save_all=True, append_images=frames[1:]), None),
        ("cmyk.jpg", encoded(photo.convert("CMYK"), "JPEG"), None),
        ("sixteen.png", encoded(sixteen, "PNG"), None),
        ("../../../etc/passwd.jpg", GOOD, None),
        ("x" * 300 + ".jpg", GOOD, None),
        ("Ünïcödé 照片 фото.jpg", GOOD, None),
        ('=HYPERLINK("evil.example","click").jpg', GOOD, None),
    ]


def test_a_batch_of_hostile_files_keeps_the_good_ones_and_explains_the_rest(client: httpx.Client, admin: str) -> None:
    enroll_knn_train(client, admin)
    cases = hostile_files()
    files = [("photos[]", (name, data, "application/octet-stream")) for name, data, _ in cases]
    response = client.post("/api/batch-photos/recognize", headers=auth(admin), files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    errors = {e["filename"]: e["error"] for e in body["errors"]}
    for name, _, expected in cases:
        if expected is not None:
            assert expected in errors[name], (name, errors.get(name))
    assert body["total_uploaded"] == len(cases)
    assert body["total_processed"] == sum(1 for *_, expected in cases if expected is None)

    log = client.get(body["log_url"], headers=auth(admin)).json()
    names = [e["filename"] for e in log["entries"]]
    assert "passwd.jpg" in names
    assert any(len(n) == 255 for n in names)
    assert "Ünïcödé 照片 фото.jpg" in names
    for entry in log["entries"]:
        if entry["filename"] in {"good.jpg", "cmyk.jpg", "sixteen.png", "animated.gif"}:
            assert entry["primary_result"]["person"] == "obama", entry["filename"]

    exported = client.get(f"/api/batch-photos/logs/{body['batch_id']}/export", headers=auth(admin)).text
    filenames = [row["Filename"] for row in csv.DictReader(io.StringIO(exported))]
    assert '\'=HYPERLINK("evil.example","click").jpg' in filenames
    assert client.get("/api/batch-photos/health").json()["status"] == "healthy"


def test_person_names_that_look_like_formulas_are_neutralised_in_the_csv(client: httpx.Client, admin: str) -> None:
    client.post(
        "/api/identities",
        headers=auth(admin),
        data={"name": "@SUM(A1:A9)"},
        files=photo_files(*sorted((KNN / "train" / "obama").iterdir())),
    )
    body = client.post(
        "/api/batch-photos/recognize", headers=auth(admin), files=photo_files(KNN / "test" / "obama1.jpg")
    ).json()
    row = next(
        csv.DictReader(
            io.StringIO(client.get(f"/api/batch-photos/logs/{body['batch_id']}/export", headers=auth(admin)).text)
        )
    )
    assert row["Primary Person"] == "'@SUM(A1:A9)"
    assert row["Match #1 Person"] == "'@SUM(A1:A9)"


def multipart_body(parts: int) -> tuple[bytes, str]:
    boundary = "facerecboundary"
    chunks = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="photos[]"; filename="p{i}.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\nx\r\n".encode()
        for i in range(parts)
    ]
    return b"".join(chunks) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"photos": []}', "application/json", 400),
        (b"photos=1", "application/x-www-form-urlencoded", 400),
        (b"--x\r\nnonsense", "multipart/form-data; boundary=x", 400),
        (b"", "multipart/form-data", 400),
        (b"", "multipart/form-data; boundary=x", 400),
    ],
    ids=["json", "urlencoded", "broken-multipart", "no-boundary", "empty-multipart"],
)
def test_malformed_upload_requests_get_a_clear_4xx(
    client: httpx.Client, admin: str, content: bytes, content_type: str, status: int
) -> None:
    response = client.post(
        "/api/batch-photos/recognize", headers={**auth(admin), "Content-Type": content_type}, content=content
    )
    assert response.status_code == status
    assert response.json()["success"] is False
    assert response.json()["error"]


def test_a_thousand_and_one_parts_are_refused(client: httpx.Client, admin: str) -> None:
    body, content_type = multipart_body(1001)
    response = client.post(
        "/api/batch-photos/recognize", headers={**auth(admin), "Content-Type": content_type}, content=body
    )
    assert response.status_code in (400, 413)
    assert response.json()["success"] is False


def test_a_body_over_the_upload_limit_is_a_413(
    settings: Settings, face_model: FaceModel, tokens: Callable[..., str]
) -> None:
    tight = settings.model_copy(update={"max_batch_size": 2, "max_file_mb": 0.5})
    with app_client(tight, face_model) as http:
        response = http.post(
            "/api/batch-photos/recognize",
            headers=auth(tokens()),
            files=[("photos[]", ("big.jpg", os.urandom(3 * 1024 * 1024), "image/jpeg"))],
        )
    assert response.status_code == 413
    assert response.json()["success"] is False


def test_every_route_but_health_docs_and_page_assets_needs_a_token(settings: Settings, client: httpx.Client) -> None:
    # /metrics has its own optional token (FACEREC_METRICS_TOKEN), tested in test_metrics.py.
    public = {"/api/batch-photos/health", "/", "/web", "/metrics"}
    checked = 0
    for route in create_app(settings).routes:
        path = route.path
        if path in public or path.startswith(("/api/docs", "/static")):
            continue
        concrete = (
            path.replace("{batch_id:str}", "20231215_143022_1234")
            .replace("{identity_id:int}", "1")
            .replace("{face_id:int}", "1")
            .replace("{entry_index:int}", "0")
            .replace("{face_index:int}", "0")
        )
        for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
            response = client.request(method, concrete)
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.json()["success"] is False
            checked += 1
    assert checked >= 14
