"""The newcomer's path: ``make run`` migrates once, keeps an admin token, says where it serves, and stops on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT, free_port

STARTUP_SECONDS = 180  # migrate, create a token, load and warm up the models: three Python processes


class MakeRun:
    """``make run PORT=<free port>`` in its own process group, every path pointing at a temporary folder."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token_file = folder / "storage" / "admin-token.txt"
        env = {
            key: value
            for key, value in os.environ.items()
            # A make (or pytest) above us must not hand its jobserver or config file down to this one.
            if key not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "FACEREC_CONFIG"}
        }
        env.update(
            FACEREC_HOME=str(folder),
            FACEREC_DATABASE_URL=f"sqlite:///{folder / 'facerec.db'}",
            FACEREC_STORAGE_DIR=str(folder / "storage"),
            FACEREC_INDEX_DIR=str(folder / "index"),
            FACEREC_INFERENCE_THREADS="1",
        )
        self.lines: list[str] = []
        self.serving = threading.Event()
        self.process = subprocess.Popen(
            # -o: the venv under test is this one; reinstalling it after a pyproject change is `make test`'s job.
            [
                "make",
                "--no-print-directory",
                "-o",
                ".venv/.installed",
                "run",
                "HOST=127.0.0.1",
                f"PORT={self.port}",
                f"ADMIN_TOKEN_FILE={self.token_file}",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a process group of its own, like a terminal's foreground job
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Serving on"):
                self.serving.set()
        self.serving.set()  # the output ended: do not keep a waiter waiting

    def wait_until_serving(self) -> str:
        """The "Serving on" line, once make prints it."""
        assert self.serving.wait(STARTUP_SECONDS), "make run printed no 'Serving on' line in time"
        served = [line for line in self.lines if line.startswith("Serving on")]
        assert served, "make run ended without serving:\n" + "\n".join(self.lines)
        return served[0]

    def interrupt(self) -> int:
        """Ctrl-C: SIGINT to the whole process group; make's exit status."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=60)

    def group_is_gone(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return True
        return False

    def close(self) -> None:
        if not self.group_is_gone():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)
        self.reader.join(timeout=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeRun]:
    """One ``make run``, serving, shared by the tests that only look at it."""
    run = MakeRun(tmp_path_factory.mktemp("make-run"))
    try:
        run.wait_until_serving()
        yield run
    finally:
        run.close()


def test_make_run_prints_the_url_of_its_port_once_the_server_answers(served: MakeRun) -> None:
    line = served.wait_until_serving()
    assert line.startswith(f"Serving on {served.url}/ ")
    assert f"{served.url}/api/docs" in line
    # No retry: by the time the line is printed, the server answers.
    assert httpx.get(f"{served.url}/api/batch-photos/health", timeout=10).status_code == 200


def test_make_run_migrates_once_before_serving(served: MakeRun) -> None:
    upgrades = [line for line in served.lines if "Running upgrade" in line]
    assert upgrades, "\n".join(served.lines)
    steps = [re.sub(r"^.*Running upgrade", "", line) for line in upgrades]
    assert len(steps) == len(set(steps)), upgrades
    # `facerec serve` does not migrate again (it would log between the token and the server's start).
    lines = served.lines
    token_at = lines.index(served.token_file.read_text().strip())
    started_at = next(i for i, line in enumerate(lines) if "Started server process" in line)
    assert not [line for line in lines[token_at:started_at] if "alembic" in line], lines[token_at:started_at]


def test_make_run_prints_the_admin_token_it_keeps(served: MakeRun) -> None:
    token = served.token_file.read_text().strip()
    assert token in served.lines
    me = httpx.get(f"{served.url}/api/auth/me", headers={"Authorization": token}, timeout=10).json()
    assert (me["domain"], me["role"]) == ("localhost", "admin")


def test_ctrl_c_stops_make_run_and_its_server(tmp_path: Path) -> None:
    run = MakeRun(tmp_path)
    try:
        run.wait_until_serving()
        run.interrupt()
        assert run.group_is_gone(), "a process of make run outlived Ctrl-C"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{run.url}/api/batch-photos/health", timeout=5)
    finally:
        run.close()


def test_make_run_refuses_a_port_already_in_use(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        run = MakeRun(tmp_path, port=other.getsockname()[1])
        try:
            assert run.process.wait(timeout=STARTUP_SECONDS) != 0
            run.reader.join(timeout=10)
            assert any("is already in use" in line for line in run.lines), run.lines
            assert not any(line.startswith("Serving on") for line in run.lines)
        finally:
            run.close()
