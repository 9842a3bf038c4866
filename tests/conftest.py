"""Shared fixtures: real databases (SQLite file, PostgreSQL server), real models, real photos, the app in process
and live servers.

The models are loaded once per run (``face_model``) and handed to every app a test builds, in process or behind
a real server; only tests about loading models or starting a server as an operator does load their own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from litestar import Litestar
from litestar.testing import TestClient
from litestar.testing.transport import TestClientTransport
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.app import create_app
from service.db import migrate
from service.db import tokens as token_queries
from service.db.session import create_db_engine, create_session_factory, normalize_url
from service.recognition.faces import FaceModel
from service.recognition.models import find_model_pack
from service.server import build_config
from service.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
FACES = REPO_ROOT.parent / "shared" / "faces"
KNN = FACES / "face_recognition" / "examples" / "knn_examples"
STRANGERS = sorted((FACES / "facenet_pytorch" / "data" / "test_images").glob("*/1.jpg"))
POSTGRES_URL = os.environ.get("FACEREC_TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """The shared labelled photos."""
    assert FACES.is_dir(), f"the shared face photos are missing: {FACES}"
    return FACES


# ----- databases ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str | None]:
    """A migrated PostgreSQL database used as the template of each test's database."""
    if POSTGRES_URL is None:
        yield None
        return
    name = f"facerec_tmpl_{uuid.uuid4().hex[:8]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        migrate.upgrade(_pg_url(name))
        yield name
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_url(database: str) -> str:
    assert POSTGRES_URL is not None
    return make_url(normalize_url(POSTGRES_URL)).set(database=database).render_as_string(hide_password=False)


def _pg_admin(statement: str) -> None:
    engine = create_engine(_pg_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path, postgres_template: str | None
) -> Iterator[str]:
    """A fresh, migrated database for one test: a SQLite file, or a PostgreSQL database when configured."""
    if request.param == "sqlite":
        path = tmp_path / "facerec.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    name = f"facerec_t_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
    try:
        yield _pg_url(name)
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings pointing every path at this test's folder."""
    return Settings(
        database_url=database_url,
        storage_dir=tmp_path / "storage",
        index_dir=tmp_path / "index",
        inference_threads=2,
        auto_migrate=False,
    )


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """A session factory on this test's database."""
    engine = create_db_engine(database_url)
    yield create_session_factory(engine)
    engine.dispose()


def statements_while(sessions: sessionmaker[Session], work: Callable[[Session], object]) -> list[str]:
    """The kinds of SQL statement (SELECT, UPDATE, ...) that ``work`` runs, in one transaction."""
    seen: list[str] = []
    engine = sessions.kw["bind"]

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", record)
    try:
        with sessions.begin() as session:
            work(session)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


@pytest.fixture
def tokens(sessions: sessionmaker[Session]) -> Callable[..., str]:
    """Create a token: ``tokens(domain, role="user")`` -> secret."""

    def create(domain: str = "example.com", role: str = "user", name: str = "") -> str:
        with sessions.begin() as session:
            _, secret = token_queries.create_token(session, domain, role, name)  # type: ignore[arg-type]
        return secret

    return create


@pytest.fixture
def admin(tokens: Callable[..., str]) -> str:
    """An admin token of domain example.com."""
    return tokens("example.com", "admin")


@pytest.fixture
def user(tokens: Callable[..., str]) -> str:
    """A user token of domain example.com."""
    return tokens("example.com", "user")


# ----- models -------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def face_model() -> FaceModel:
    """The bundled models, loaded once for the whole run."""
    model = FaceModel(find_model_pack(None), threads=2)
    model.warm_up()
    return model


# ----- live servers -------------------------------------------------------------------------------------
def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """uvicorn serving ``create_app(settings, model)`` on a free loopback port, in a thread, configured as in
    production. Pass the session's ``face_model`` as ``model`` unless loading the models is under test.

    ``stand_in`` serves another ASGI app instead, with the same uvicorn configuration (for protocol tests).
    """

    def __init__(
        self, settings: Settings, stand_in: Callable[..., object] | None = None, *, model: FaceModel | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings, model)  # its state (services, runner) is there once the server has started
        served = stand_in or self.app
        config = build_config(settings, served, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.started:
                return self
            if not self.thread.is_alive():
                raise RuntimeError("server failed to start")
            time.sleep(0.01)
        raise RuntimeError("server did not start in time")

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class LoopbackTransport(TestClientTransport[TestClient[Litestar]]):
    """The test client's transport, with requests coming from a loopback address as on a live server (the
    test client's own peer, "testclient", is no address: the auth limiter and /metrics judge the peer)."""

    def parse_request(self, request: httpx.Request) -> dict[str, Any]:
        scope = super().parse_request(request)
        scope["client"] = ("127.0.0.1", 50000)
        return scope


@contextlib.contextmanager
def app_client(settings: Settings, model: FaceModel) -> Iterator[TestClient[Litestar]]:
    """``create_app(settings, model)`` in process, behind Litestar's test client (an ``httpx.Client``; its lifespan
    runs as a server's would). For tests whose subject is the application, not HTTP on a socket."""
    with TestClient(create_app(settings, model), timeout=120) as http:
        http._transport = LoopbackTransport(http)  # where httpx keeps the transport the test client set up
        http.follow_redirects = False  # as an httpx.Client on a live server
        yield http


@pytest.fixture
def live_server(settings: Settings, face_model: FaceModel) -> Iterator[LiveServer]:
    """A real HTTP server on this test's database."""
    with LiveServer(settings, model=face_model) as server:
        yield server


@pytest.fixture
def client(request: pytest.FixtureRequest, settings: Settings, face_model: FaceModel) -> Iterator[httpx.Client]:
    """An HTTP client for the app on this test's database: in process, or on the live server when the test
    uses ``live_server`` too (so both reach one app)."""
    if "live_server" in request.fixturenames:
        server: LiveServer = request.getfixturevalue("live_server")
        with httpx.Client(base_url=server.url, timeout=120) as http:
            yield http
        return
    with app_client(settings, face_model) as http:
        yield http


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], seconds: float = 90) -> httpx.Response:
    """Poll a server started as a subprocess until its health route answers; fail if it exits or stalls."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return httpx.get(f"{url}/api/batch-photos/health", timeout=2)
        except httpx.TransportError:
            assert process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.2)


@pytest.fixture
def facerec_env(settings: Settings) -> dict[str, str]:
    """This test's settings as ``FACEREC_*`` variables for a ``facerec`` subprocess (none inherited)."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("FACEREC_")}
    return {
        **inherited,
        "FACEREC_DATABASE_URL": settings.database_url,
        "FACEREC_STORAGE_DIR": str(settings.storage_dir),
        "FACEREC_INDEX_DIR": str(settings.index_dir),
        "FACEREC_INFERENCE_THREADS": "2",
        "FACEREC_LOG_LEVEL": "WARNING",
    }


class ServerProcess:
    """``facerec serve`` in a subprocess, as an operator runs it: started until healthy, stopped or killed.

    Its log is read line by line, so a test can wait for a point in the server's work (``wait_for_log``)
    instead of sleeping and hoping the server got there.
    """

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.env = env
        self.args = args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[str] = queue.Queue()

    def start(self) -> ServerProcess:
        """Start the server and wait until its health route answers 200."""
        self._lines = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(self.port), *self.args],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        threading.Thread(target=self._read_log, args=(self.process,), daemon=True).start()
        response = wait_until_healthy(self.url, self.process)
        assert response.status_code == 200, response.text
        return self

    def _read_log(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        for raw in process.stderr:  # drained always, so the server never blocks on a full pipe
            self._lines.put(raw.decode("utf-8", "replace"))

    def wait_for_log(self, text: str, seconds: float = 120) -> str:
        """The first log line not yet read (since the start, or the last wait or drain) that contains ``text``:
        a line logged before this call, e.g. for an earlier request, counts too."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the server never logged {text!r}") from None
            if text in line:
                return line

    def drain_log(self) -> list[str]:
        """Every log line received since the last wait or drain."""
        lines = []
        while True:
            try:
                lines.append(self._lines.get_nowait())
            except queue.Empty:
                return lines

    def kill(self) -> None:
        """SIGKILL: the server gets no chance to clean up."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """Terminate the server if it runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def worker_held(server: LiveServer | TestClient[Litestar]) -> Iterator[threading.Event]:
    """Occupy one of the app's inference workers (a live server's or one in process) with a job that ends when
    the yielded event is set (or the block ends): the state of a server busy with another batch, reached
    without racing requests."""
    release = threading.Event()
    runner = server.app.state.services.runner
    before = runner.pending
    holder = threading.Thread(target=lambda: asyncio.run(runner.run("holder", release.wait, 120)), daemon=True)
    holder.start()
    try:
        while runner.pending <= before:
            release.wait(0.01)
        yield release
    finally:
        release.set()
        holder.join(30)


@pytest.fixture
def held_server(settings: Settings, face_model: FaceModel) -> Iterator[LiveServer]:
    """A live server with one inference worker, no queue, and that worker held until the test ends."""
    busy = settings.model_copy(update={"inference_workers": 1, "max_queued_batches": 0})
    with LiveServer(busy, model=face_model) as server, worker_held(server):
        yield server


@pytest.fixture
def held_client(settings: Settings, face_model: FaceModel) -> Iterator[TestClient[Litestar]]:
    """The app in process with one inference worker, no queue, and that worker held until the test ends."""
    busy = settings.model_copy(update={"inference_workers": 1, "max_queued_batches": 0})
    with app_client(busy, face_model) as http, worker_held(http):
        yield http


def auth(token: str) -> dict[str, str]:
    """The Authorization header the spec documents."""
    return {"Authorization": token}


def photo_files(*paths: Path) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Multipart ``photos[]`` parts for httpx."""
    return [("photos[]", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]


def enroll_knn_train(client: httpx.Client, admin_token: str) -> dict[str, int]:
    """Enroll every person of knn_examples/train through the API; returns name -> identity id."""
    ids = {}
    for person in sorted(p for p in (KNN / "train").iterdir() if p.is_dir()):
        response = client.post(
            "/api/identities",
            headers=auth(admin_token),
            data={"name": person.name},
            files=photo_files(*sorted(person.iterdir())),
        )
        assert response.status_code == 201, response.text
        ids[person.name] = response.json()["identity"]["id"]
    return ids
