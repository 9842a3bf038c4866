"""When PostgreSQL goes away, health and the API say so with 503 (not 200 / 500) and recover by themselves.

The app (in process) reaches PostgreSQL through a TCP proxy written here; stopping the proxy closes every
connection and refuses new ones, as a database restart or a network cut would.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy.engine import make_url

from service.recognition.faces import FaceModel
from service.settings import Settings
from tests.conftest import POSTGRES_URL, app_client, auth, free_port

pytestmark = [
    pytest.mark.skipif(POSTGRES_URL is None, reason="needs FACEREC_TEST_DATABASE_URL (PostgreSQL)"),
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]
HEALTH = "/api/batch-photos/health"
SPEC_HEALTH_FIELDS = {"status", "service", "version", "log_directory_exists", "endpoints"}


class TcpProxy:
    """Forwards a loopback port to ``target``; ``stop`` drops every connection, ``start`` serves again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Listen (again) on the same port."""
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._spawn(self._accept, self._listener)

    def stop(self) -> None:
        """Stop listening and close every forwarded connection, then wait for the threads to end."""
        if self._listener is None:
            return  # already stopped
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        self._listener = None
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):  # already closed by the other side
                    sock.shutdown(socket.SHUT_RDWR)
            self._sockets.clear()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets.update((client, upstream))
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass  # the proxy was stopped or the peer went away
        finally:
            for sock in (source, sink):  # one side gone: close both directions
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            source.close()  # this thread is the only reader of ``source``


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    url = make_url(database_url)
    forwarder = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    forwarder.start()
    yield forwarder
    forwarder.stop()


@pytest.fixture
def proxied_client(
    settings: Settings, face_model: FaceModel, proxy: TcpProxy, database_url: str
) -> Iterator[httpx.Client]:
    """The app in process, on this test's database through the proxy."""
    through_proxy = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    proxied = settings.model_copy(update={"database_url": through_proxy.render_as_string(hide_password=False)})
    with app_client(proxied, face_model) as http:
        yield http


def test_health_is_503_while_the_database_is_unreachable_and_200_again_once_it_is_back(
    proxied_client: httpx.Client, proxy: TcpProxy
) -> None:
    http = proxied_client
    assert http.get(HEALTH).status_code == 200

    proxy.stop()
    down = http.get(HEALTH)
    assert down.status_code == 503
    body = down.json()
    assert set(body) >= SPEC_HEALTH_FIELDS
    assert body["status"] == "unhealthy"
    assert body["database"] == "unreachable"

    proxy.start()
    up = http.get(HEALTH)
    assert up.status_code == 200
    assert up.json()["status"] == "healthy"


def test_api_calls_answer_503_with_retry_after_while_the_database_is_unreachable_then_work_again(
    proxied_client: httpx.Client, proxy: TcpProxy, tokens: Callable[..., str]
) -> None:
    http = proxied_client
    http.headers.update(auth(tokens()))
    assert http.get("/api/batch-photos/logs").status_code == 200

    proxy.stop()
    down = http.get("/api/batch-photos/logs")
    assert down.status_code == 503
    assert down.json() == {"success": False, "error": "Database unavailable"}
    assert int(down.headers["Retry-After"]) > 0

    proxy.start()
    assert http.get("/api/batch-photos/logs").status_code == 200
