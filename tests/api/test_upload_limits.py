"""Uploads are read as a stream with limits: text fields, odd text, upload space and the queue refuse early,
with a clear 4xx/503, while good photos in an acceptable request are always kept."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable

import httpx
import pytest
from PIL import Image

from service.recognition.faces import FaceModel
from service.settings import Settings
from tests.conftest import KNN, LiveServer, app_client, auth

GOOD = (KNN / "test" / "obama1.jpg").read_bytes()
BOUNDARY = "facerecboundary"


def part(name: str, content: bytes, filename: bytes | None = None, disposition_extra: bytes = b"") -> bytes:
    disposition = b'form-data; name="' + name.encode() + b'"'
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    disposition += disposition_extra
    return b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: " + disposition + b"\r\n\r\n" + content + b"\r\n"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--" + BOUNDARY.encode() + b"--\r\n"


def post_raw(client: httpx.Client, path: str, token: str, content: bytes) -> httpx.Response:
    headers = {**auth(token), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return client.post(path, headers=headers, content=content)


def read_response_head(sock: socket.socket) -> str:
    """The status line and headers of the server's answer, however much of our body it read."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode("latin-1")


def open_upload(url: str, token: str, path: str, announced: int) -> socket.socket:
    """A raw connection that announced a body of ``announced`` bytes and has sent none of it yet."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {announced}\r\n\r\n"
    )
    sock.sendall(head.encode())
    return sock


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (128, 128, 128)).save(buffer, "PNG")
    return buffer.getvalue()


# ----- text fields --------------------------------------------------------------------------------------
def test_a_huge_text_field_is_refused_while_it_streams_in(live_server: LiveServer, user: str) -> None:
    announced = 500 * 1024 * 1024
    with open_upload(live_server.url, user, "/api/batch-photos/recognize", announced) as sock:
        sock.sendall(b"--" + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; name="junk"\r\n\r\n')
        sock.sendall(b"x" * (1024 * 1024))  # 1 MB of a 500 MB field: the answer must not wait for the rest
        head = read_response_head(sock)
    assert head.startswith("HTTP/1.1 413"), head
    assert "too large" in head.lower() or "413" in head


def test_a_text_field_over_the_limit_is_a_413_naming_the_field(client: httpx.Client, user: str) -> None:
    response = post_raw(
        client,
        "/api/batch-photos/recognize",
        user,
        body(part("photos[]", GOOD, b"a.jpg"), part("threshold", b"7" * 5000)),
    )
    assert response.status_code == 413
    assert response.json() == {
        "success": False,
        "error": "Form field 'threshold' is too large: the limit is 4,096 bytes",
    }


def test_a_person_name_over_the_field_limit_is_refused(client: httpx.Client, admin: str) -> None:
    response = post_raw(
        client, "/api/identities", admin, body(part("name", b"n" * 10_000), part("photos[]", GOOD, b"a.jpg"))
    )
    assert response.status_code == 413
    assert "'name'" in response.json()["error"]


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        ((part("photos[]", GOOD, b"a.jpg"), part("threshold", b"7\xff0")), "'threshold' is not valid UTF-8"),
        ((part("photos[]", GOOD, b"caf\xe9.jpg"),), "Malformed multipart body"),
        (
            (part("photos[]", GOOD, None, b"; filename*=UTF-8''caf%E9.jpg"),),
            "file name (filename*) is not valid UTF-8",
        ),
        ((part("photos[]", GOOD, None, b"; filename*=nonsense-charset''a.jpg"),), "not valid nonsense-charset"),
    ],
    ids=["threshold", "raw-filename", "extended-filename", "unknown-charset"],
)
def test_text_that_is_not_utf8_is_a_400_with_a_reason(
    client: httpx.Client, user: str, parts: tuple[bytes, ...], reason: str
) -> None:
    response = post_raw(client, "/api/batch-photos/recognize", user, body(*parts))
    assert response.status_code == 400
    assert reason in response.json()["error"]


def test_a_person_name_that_is_not_utf8_is_a_400(client: httpx.Client, admin: str) -> None:
    response = post_raw(
        client, "/api/identities", admin, body(part("name", b"Jos\xe9"), part("photos[]", GOOD, b"a.jpg"))
    )
    assert response.status_code == 400
    assert "'name' is not valid UTF-8" in response.json()["error"]


def test_an_extended_utf8_filename_is_used(client: httpx.Client, user: str) -> None:
    response = post_raw(
        client,
        "/api/batch-photos/recognize",
        user,
        body(part("photos[]", GOOD, None, b"; filename*=UTF-8''%E2%82%AC.jpg")),
    )
    assert response.status_code == 200, response.text
    log = client.get(response.json()["log_url"], headers=auth(user)).json()
    assert log["entries"][0]["filename"] == "€.jpg"


def test_an_empty_nameless_file_part_is_no_photo(client: httpx.Client, user: str) -> None:
    # What a browser form sends for "no file chosen".
    response = post_raw(client, "/api/batch-photos/recognize", user, body(part("photos[]", b"", b"")))
    assert response.status_code == 400
    assert response.json()["error"].startswith("No photos uploaded")


def test_a_nameless_file_with_content_is_processed_as_unnamed(client: httpx.Client, user: str) -> None:
    response = post_raw(client, "/api/batch-photos/recognize", user, body(part("photos[]", GOOD, b"")))
    assert response.status_code == 200, response.text
    log = client.get(response.json()["log_url"], headers=auth(user)).json()
    assert log["entries"][0]["filename"] == "unnamed"


def test_too_many_parts_says_what_was_too_many(client: httpx.Client, user: str) -> None:
    fields = [part(f"f{i}", b"x") for i in range(200)]
    response = post_raw(client, "/api/batch-photos/recognize", user, body(part("photos[]", GOOD, b"a.jpg"), *fields))
    assert response.status_code == 413
    assert (
        response.json()["error"] == "Too many parts in the form: at most 116 (100 photos[] files and 16 other fields)"
    )


# ----- sizes --------------------------------------------------------------------------------------------
def test_a_file_one_byte_over_the_limit_says_so_in_figures_that_differ(
    settings: Settings, face_model: FaceModel, tokens: Callable[..., str]
) -> None:
    tight = settings.model_copy(update={"max_file_mb": 0.5})
    limit = 512 * 1024
    oversized = GOOD + b"\0" * (limit + 1 - len(GOOD))
    with app_client(tight, face_model) as http:
        response = post_raw(
            http,
            "/api/batch-photos/recognize",
            tokens(),
            body(part("photos[]", GOOD, b"good.jpg"), part("photos[]", oversized, b"big.jpg")),
        )
    assert response.status_code == 200, response.text
    assert response.json()["errors"] == [
        {"filename": "big.jpg", "error": "File is too large: 524,289 bytes; the limit is 524,288 bytes (0.5 MB)"}
    ]
    assert response.json()["total_processed"] == 1


def test_uploads_beyond_the_servers_upload_space_get_503_and_the_space_comes_back(
    settings: Settings, face_model: FaceModel, tokens: Callable[..., str]
) -> None:
    small_space = settings.model_copy(update={"upload_spool_mb": 0.1})  # about 100 KB across all requests
    big = GOOD + b"\0" * 200_000  # still a valid JPEG (trailing bytes are ignored), 0.2 MB
    token = tokens()
    with app_client(small_space, face_model) as http:
        refused = post_raw(http, "/api/batch-photos/recognize", token, body(part("photos[]", big, b"big.jpg")))
        accepted = post_raw(http, "/api/batch-photos/recognize", token, body(part("photos[]", GOOD, b"good.jpg")))
        assert http.app.state.services.spool.used == 0
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) >= 1
    assert "too many uploads" in refused.json()["error"]
    assert accepted.status_code == 200, accepted.text


# ----- the queue is checked before the body is read ---------------------------------------------------------
def test_a_full_queue_refuses_an_upload_before_its_body_is_sent(held_server: LiveServer, user: str) -> None:
    with open_upload(held_server.url, user, "/api/batch-photos/recognize", 200 * 1024 * 1024) as sock:
        head = read_response_head(sock)  # not one byte of the 200 MB body has been sent
    assert head.startswith("HTTP/1.1 503"), head
    assert "retry-after:" in head.lower()


def test_a_full_queue_refuses_an_enrollment_too(held_client: httpx.Client, admin: str) -> None:
    response = post_raw(
        held_client, "/api/identities", admin, body(part("name", b"A"), part("photos[]", GOOD, b"a.jpg"))
    )
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1


# ----- images the detector cannot take ----------------------------------------------------------------------
@pytest.mark.parametrize(("width", "height"), [(1, 700), (700, 1), (2, 1300), (1000, 30)])
def test_a_thin_image_is_a_per_file_error_and_the_batch_keeps_its_good_photos(
    client: httpx.Client, user: str, width: int, height: int
) -> None:
    response = post_raw(
        client,
        "/api/batch-photos/recognize",
        user,
        body(part("photos[]", GOOD, b"good.jpg"), part("photos[]", png(width, height), b"thin.png")),
    )
    assert response.status_code == 200, response.text
    assert response.json()["total_processed"] == 1
    [error] = response.json()["errors"]
    assert error["filename"] == "thin.png"
    assert f"{width}x{height}" in error["error"]
    assert "too small" in error["error"] or "too elongated" in error["error"]


def test_a_thin_image_is_refused_at_enrollment_with_its_reason(client: httpx.Client, admin: str) -> None:
    response = post_raw(
        client,
        "/api/identities",
        admin,
        body(part("name", b"Barack"), part("photos[]", GOOD, b"good.jpg"), part("photos[]", png(1, 700), b"t.png")),
    )
    assert response.status_code == 201, response.text
    assert response.json()["rejected"] == [
        {
            "filename": "t.png",
            "error": "Image is too small to search for faces: 1x700 pixels; each side needs at least 16 pixels",
            "reasons": ["INVALID_PHOTO"],
        }
    ]
