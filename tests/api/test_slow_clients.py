"""Oversized headers, slow or stalled clients and idle connection floods cannot hold the server (raw sockets)."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.recognition.faces import FaceModel
from service.settings import Settings
from tests.conftest import LiveServer, auth

HEALTH = "/api/batch-photos/health"
MiB = 1024 * 1024
BOUNDARY = "facerec-test-boundary"


def connect(server: LiveServer) -> socket.socket:
    """A raw TCP connection to the server."""
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


@contextmanager
def open_connections(server: LiveServer, count: int, first_bytes: bytes = b"") -> Iterator[list[socket.socket]]:
    """``count`` connections that send ``first_bytes`` (or nothing) and then say no more."""
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(connect(server))
            if first_bytes:
                sock.sendall(first_bytes)
            sockets.append(sock)
        yield sockets


def read_until_closed(sock: socket.socket, within: float) -> tuple[bytes, float]:
    """What the server sends until it closes the connection, and how long that took; fails past ``within``."""
    started = time.monotonic()
    received = b""
    while True:
        remaining = started + within - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"the server kept the connection open for more than {within} s")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        except TimeoutError:
            continue
        if not chunk:
            break
        received += chunk
    return received, time.monotonic() - started


def is_closed(sock: socket.socket) -> bool:
    """Whether the server has closed this connection (checked without waiting or consuming data)."""
    sock.settimeout(0)
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def stays_open(sock: socket.socket, seconds: float) -> bool:
    """Whether the server keeps this connection open, sending nothing, for ``seconds``."""
    sock.settimeout(seconds)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except TimeoutError:
        return True
    except ConnectionResetError:
        return False
    return False


def rss_bytes() -> int:
    """Resident memory of this process, which runs the live server in a thread."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def multipart_body(fields: dict[str, str]) -> bytes:
    """A multipart/form-data body of text fields."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


def upload_head(token: str, content_length: int, extra: str = "") -> bytes:
    """The request line and headers of a batch upload announcing ``content_length`` bytes of body."""
    return (
        f"POST /api/batch-photos/recognize HTTP/1.1\r\nHost: test\r\nAuthorization: {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {content_length}\r\n"
        f"{extra}\r\n"
    ).encode()


def late_reader(release: threading.Event) -> Callable[..., Any]:
    """An ASGI app that reads the request body only once ``release`` is set, then answers its length."""

    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        while not release.is_set():  # busy elsewhere (a queue, a slow database) until the test says so
            await asyncio.sleep(0.01)
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        answer = str(size).encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(answer))]}
        )
        await send({"type": "http.response.body", "body": answer})

    return app


@pytest.fixture
def quick(settings: Settings) -> Settings:
    """Settings with one-second header and body timeouts."""
    return settings.model_copy(update={"header_timeout": 1.0, "body_timeout": 1.0})


# ----- header size --------------------------------------------------------------------------------------
def test_an_oversized_header_line_is_refused_quickly_without_being_buffered(
    settings: Settings, face_model: FaceModel
) -> None:
    chunk = b"a" * 65536
    with LiveServer(settings, model=face_model) as server, connect(server) as sock:
        memory_before = rss_bytes()
        started = time.monotonic()
        sock.sendall(b"GET /api/batch-photos/health HTTP/1.1\r\nHost: test\r\nX-Big: ")
        sent = 0
        try:
            while sent < 200 * MiB:  # what once cost the server 388 MB and 54 s
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response, _ = read_until_closed(sock, within=10)
        elapsed = time.monotonic() - started
        memory_growth = rss_bytes() - memory_before
    assert response == b"" or response.startswith(b"HTTP/1.1 400")  # a reset may overtake the 400
    assert sent < 32 * MiB  # refused after the first kilobytes; the rest is what socket buffers took
    assert elapsed < 5
    assert memory_growth < 32 * MiB


def test_headers_within_the_limit_are_served(settings: Settings, face_model: FaceModel) -> None:
    with LiveServer(settings, model=face_model) as server, httpx.Client(base_url=server.url) as http:
        response = http.get(HEALTH, headers={"X-Padding": "a" * (settings.max_header_bytes - 1024)})
    assert response.status_code == 200


# ----- header and body timeouts -------------------------------------------------------------------------
def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    quick: Settings, face_model: FaceModel
) -> None:
    with LiveServer(quick, model=face_model) as server, connect(server) as sock:
        response, elapsed = read_until_closed(sock, within=5)
    assert response == b""
    assert elapsed < 3


def test_partial_headers_get_408_and_are_closed_after_the_header_timeout(
    quick: Settings, face_model: FaceModel
) -> None:
    with LiveServer(quick, model=face_model) as server, connect(server) as sock:
        sock.sendall(b"GET /api/batch-photos/health HTTP/1.1\r\nHost: test\r\n")
        response, elapsed = read_until_closed(sock, within=5)
    assert response.startswith(b"HTTP/1.1 408")
    assert 0.9 < elapsed < 3


def test_trickling_header_lines_does_not_extend_the_header_timeout(quick: Settings, face_model: FaceModel) -> None:
    with LiveServer(quick, model=face_model) as server, connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /api/batch-photos/health HTTP/1.1\r\nHost: test\r\n")
        while time.monotonic() - started < 10:
            if not stays_open(sock, 0.2):
                break
            try:
                sock.sendall(b"X-Slow: 1\r\n")  # one more header line every 0.2 s, never the blank line
            except (BrokenPipeError, ConnectionResetError):
                break
        elapsed = time.monotonic() - started
    assert elapsed < 3


def test_keep_alive_requests_each_get_a_fresh_header_deadline(quick: Settings, face_model: FaceModel) -> None:
    with LiveServer(quick, model=face_model) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            for _ in range(3):  # 3 × 0.6 s on one connection, longer than the 1 s header timeout
                connection.request("GET", HEALTH)
                response = connection.getresponse()
                response.read()
                assert response.status == 200
                assert connection.sock is not None
                assert stays_open(connection.sock, 0.6)
        finally:
            connection.close()


def test_a_stalled_body_gets_408_and_is_closed_after_the_body_timeout(
    quick: Settings, tokens: Callable[..., str], face_model: FaceModel
) -> None:
    token = tokens("example.com", "user")
    with LiveServer(quick, model=face_model) as server, connect(server) as sock:
        sock.sendall(upload_head(token, 100_000) + f"--{BOUNDARY}\r\n".encode())  # and then nothing more
        response, elapsed = read_until_closed(sock, within=5)
    assert response.startswith(b"HTTP/1.1 408")
    assert 0.9 < elapsed < 3


def test_a_slow_but_steady_body_is_received_whole(
    quick: Settings, tokens: Callable[..., str], face_model: FaceModel
) -> None:
    token = tokens("example.com", "user")
    body = multipart_body({"threshold": "50", "note": "x" * 200})
    size = len(body) // 6 + 1
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    # About 170 bytes a second: above this minimum average rate (1 s + 100 bytes a second allowed).
    steady = quick.model_copy(update={"body_min_rate": 100})
    assert len(body) / (len(pieces) * 0.4) > steady.body_min_rate
    with LiveServer(steady, model=face_model) as server, connect(server) as sock:
        sock.sendall(upload_head(token, len(body)))
        for piece in pieces:  # 0.4 s apart: well over the 1 s body timeout in all, never 1 s without progress
            assert stays_open(sock, 0.4)
            sock.sendall(piece)
        response, _ = read_until_closed(sock, within=10)  # the answer, then the close the 4xx asks for
    assert len(pieces) * 0.4 > 2 * quick.body_timeout
    assert response.startswith(b"HTTP/1.1 400")  # no photos: the body was read to the end and judged


def test_a_body_trickled_below_the_minimum_rate_gets_408_although_it_never_stalls(
    quick: Settings, tokens: Callable[..., str], face_model: FaceModel
) -> None:
    token = tokens("example.com", "user")
    trickle = quick.model_copy(update={"body_min_rate": 1000})
    with LiveServer(trickle, model=face_model) as server, connect(server) as sock:
        sock.sendall(upload_head(token, 100_000) + f"--{BOUNDARY}\r\n".encode())
        started = time.monotonic()
        # 40 bytes every 0.3 s (about 130 bytes a second): progress well within the 1 s body timeout each time,
        # but the average falls behind the minimum once the first second is over.
        while not is_closed(sock) and time.monotonic() - started < 8:
            try:
                sock.sendall(b"x" * 40)
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.3)
        response, _ = read_until_closed(sock, within=5)
        elapsed = time.monotonic() - started
    assert response.startswith(b"HTTP/1.1 408")
    assert elapsed < 6  # allowed: 1 s plus 1 s per 1000 bytes received (under 300 in that time)


def test_a_client_waiting_for_100_continue_is_not_timed_out_while_the_app_is_busy(quick: Settings) -> None:
    release = threading.Event()
    head = b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    with LiveServer(quick, stand_in=late_reader(release)) as server, connect(server) as sock:
        sock.sendall(head)
        assert stays_open(sock, 2.5 * quick.body_timeout)
        release.set()
        assert sock.recv(1024).startswith(b"HTTP/1.1 100")
        # From the moment the app asks for the body, the client has the whole body timeout to send it.
        assert stays_open(sock, 0.7 * quick.body_timeout)
        sock.sendall(b"hello")
        response, _ = read_until_closed(sock, within=5)
    assert response.startswith(b"HTTP/1.1 200")
    assert response.endswith(b"\r\n\r\n5")


def test_a_body_the_app_is_slow_to_read_is_not_cut_off(quick: Settings) -> None:
    release = threading.Event()
    body = b"x" * (256 * 1024)  # past uvicorn's 64 KB buffer: the server stops reading until the app does
    with LiveServer(quick, stand_in=late_reader(release)) as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        assert stays_open(sock, 2 * quick.body_timeout)
        release.set()
        response, _ = read_until_closed(sock, within=5)
    assert response.startswith(b"HTTP/1.1 200")
    assert response.endswith(b"\r\n\r\n%d" % len(body))


# ----- connection floods --------------------------------------------------------------------------------
def test_health_and_an_authenticated_request_are_served_while_200_connections_idle(
    settings: Settings, tokens: Callable[..., str], face_model: FaceModel
) -> None:
    token = tokens("example.com", "user")
    with (
        LiveServer(settings, model=face_model) as server,
        open_connections(server, 150),
        open_connections(server, 50, first_bytes=b"GET /api/batch-photos/health HTTP/1.1\r\n"),
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        assert http.get(HEALTH).status_code == 200
        assert http.get("/api/auth/me", headers=auth(token)).status_code == 200


def test_at_the_connection_cap_the_longest_waiting_connections_make_room(
    settings: Settings, tokens: Callable[..., str], face_model: FaceModel
) -> None:
    capped = settings.model_copy(update={"max_connections": 20, "header_timeout": 60.0})
    token = tokens("example.com", "user")
    with (
        LiveServer(capped, model=face_model) as server,
        open_connections(server, 50) as idle,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        assert http.get(HEALTH).status_code == 200
        assert http.get("/api/auth/me", headers=auth(token)).status_code == 200
        deadline = time.monotonic() + 5
        while sum(map(is_closed, idle)) < 31 and time.monotonic() < deadline:
            time.sleep(0.05)  # polling: the closes are on their way
        closed = [n for n, sock in enumerate(idle) if is_closed(sock)]
    assert closed == list(range(31))  # 50 idle + 1 client, 20 kept: the 31 that waited longest were closed


def test_connections_with_a_request_in_progress_are_never_closed_to_make_room(
    settings: Settings, tokens: Callable[..., str], face_model: FaceModel
) -> None:
    capped = settings.model_copy(update={"max_connections": 5, "body_timeout": 60.0})
    with ExitStack() as stack:
        server = stack.enter_context(LiveServer(capped, model=face_model))
        busy = []
        for _ in range(5):
            sock = stack.enter_context(connect(server))
            sock.sendall(upload_head(tokens("example.com", "user"), 1000, "Expect: 100-continue\r\n"))
            busy.append(sock)
        for sock in busy:  # 100 Continue: the app is reading this request's body, which never comes
            assert sock.recv(65536).startswith(b"HTTP/1.1 100")
        response = httpx.get(server.url + HEALTH, timeout=10)
        assert not any(map(is_closed, busy))
    assert response.status_code == 503
