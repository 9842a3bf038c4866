"""`facerec serve --workers N`: one scrape of /metrics, whichever worker answers it, shows every worker's figures."""

from __future__ import annotations

import collections
import http.client
import json
import os
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from service.metrics import MULTIPROC_DIR_ENV, PRIVATE_DIR_PREFIX, operator_directory, shared_between_workers
from tests.api.test_metrics import samples
from tests.api.test_workers import PROBE, pinned_clients, worker_pid
from tests.conftest import KNN, ServerProcess, auth, photo_files

WHOAMI = "/api/auth/me"
RECOGNIZE = "/api/batch-photos/recognize"
Values = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def server_env(facerec_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The server's environment: one inference thread per worker, temporary files under ``tmp_path/tmp``."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**facerec_env, "FACEREC_INFERENCE_THREADS": "1", "TMPDIR": str(temp)}
    env.pop(MULTIPROC_DIR_ENV, None)  # the private directory is under test unless a test sets its own
    return env


def private_dirs(env: dict[str, str]) -> list[Path]:
    """The metrics directories the server made of its own."""
    return sorted(Path(env["TMPDIR"]).glob(f"{PRIVATE_DIR_PREFIX}*"))


def scrape(url: str) -> Values:
    """One scrape, on a fresh connection (so any worker may answer it)."""
    with httpx.Client(base_url=url, timeout=30) as fresh:
        response = fresh.get("/metrics")
    assert response.status_code == 200, response.text
    return samples(response.text)


def total(values: Values, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples that carry ``labels``."""
    wanted = set(labels.items())
    return sum(
        value for (sample, sample_labels), value in values.items() if sample == name and wanted <= set(sample_labels)
    )


def requests_from_both_workers(url: str, token: str, at_least: int) -> collections.Counter[int]:
    """Ask ``/api/auth/me`` on fresh connections, at least ``at_least`` times and until two workers answered;
    returns how many requests each worker answered."""
    answered: collections.Counter[int] = collections.Counter()
    deadline = time.monotonic() + 90
    while (sum(answered.values()) < at_least or len(answered) < 2) and time.monotonic() < deadline:
        with httpx.Client(base_url=url, timeout=30) as fresh:
            answered[worker_pid(fresh, token)] += 1
    assert len(answered) == 2, f"only {answered} answered"
    return answered


def settled(read: Callable[[], float], expected: float, seconds: float = 10) -> float:
    """``read()`` once it equals ``expected``, else its last value after ``seconds``. A worker counts a request
    just after sending the answer, so a scrape made at once, and answered by the other worker, can see the last
    request not yet counted; its duration is observed last, so once that count is in, the request's are all in."""
    deadline = time.monotonic() + seconds
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def whoami_durations(url: str) -> float:
    return total(scrape(url), "facerec_http_request_duration_seconds_count", path=WHOAMI)


def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    """Poll until ``condition`` holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


# ----- the shared directory, in process -----------------------------------------------------------------------------
def test_workers_get_a_new_private_directory_that_goes_with_the_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(MULTIPROC_DIR_ENV, raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # tempfile caches the folder it found first
    with shared_between_workers() as shared:
        assert os.environ[MULTIPROC_DIR_ENV] == str(shared)
        assert shared.parent == tmp_path
        assert list(shared.iterdir()) == []
        assert stat.S_IMODE(shared.stat().st_mode) == 0o700  # other users' processes cannot forge figures
        (shared / "counter_1.db").write_bytes(b"")
    assert MULTIPROC_DIR_ENV not in os.environ
    assert not shared.exists()


def test_an_operators_directory_is_used_made_if_missing_and_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    theirs = tmp_path / "theirs" / "metrics"
    monkeypatch.setenv(MULTIPROC_DIR_ENV, str(theirs))
    with shared_between_workers() as shared:
        assert shared == theirs
        assert shared.is_dir()
        (shared / "counter_1.db").write_bytes(b"")
    assert os.environ[MULTIPROC_DIR_ENV] == str(theirs)
    assert (theirs / "counter_1.db").exists()


def test_an_operators_directory_that_cannot_be_one_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    occupied = tmp_path / "a-file"
    occupied.write_text("")
    monkeypatch.setenv(MULTIPROC_DIR_ENV, str(occupied))
    with pytest.raises(ValueError, match=MULTIPROC_DIR_ENV):
        operator_directory()


# ----- live servers -------------------------------------------------------------------------------------------------
def test_one_scrape_counts_the_requests_of_every_worker(server_env: dict[str, str], admin: str) -> None:
    with ServerProcess(server_env, "--workers", "2") as server:
        answered = requests_from_both_workers(server.url, admin, at_least=20)
        made = sum(answered.values())
        assert settled(lambda: whoami_durations(server.url), made) == made, answered
        for _ in range(6):  # on fresh connections, so both workers answer some of the scrapes
            values = scrape(server.url)
            assert total(values, "facerec_http_requests_total", path=WHOAMI) == made, answered
            assert total(values, "facerec_http_request_duration_seconds_count", path=WHOAMI) == made
            assert total(values, "facerec_http_requests_in_progress") == 0


def test_one_scrape_counts_the_photos_and_batches_of_every_worker(server_env: dict[str, str], admin: str) -> None:
    with ServerProcess(server_env, "--workers", "2") as server:
        one, other = pinned_clients(server.url, admin)  # keep-alive connections on different workers
        try:
            files = [*photo_files(PROBE), ("photos[]", ("bad.jpg", b"nope", "image/jpeg"))]
            for client in (one, other, one):
                assert client.post(RECOGNIZE, files=files).status_code == 200
            obama = sorted((KNN / "train" / "obama").iterdir())
            assert one.post("/api/identities", data={"name": "obama"}, files=photo_files(*obama)).status_code == 201
            assert other.post(RECOGNIZE, files=photo_files(PROBE)).status_code == 200  # catches up with it
        finally:
            one.close()
            other.close()

        for _ in range(4):
            values = scrape(server.url)
            assert values[("facerec_batches_total", ())] == 4
            assert values[("facerec_photos_total", (("outcome", "processed"),))] == 4
            assert values[("facerec_photos_total", (("outcome", "rejected"),))] == 3
            assert total(values, "facerec_photo_results_total") == 4
            assert values[("facerec_stage_seconds_count", (("stage", "decode"),))] >= 4
            # Both workers hold the domain's index: its size once, not their sum nor one series per worker.
            sizes = {labels: v for (name, labels), v in values.items() if name == "facerec_index_faces"}
            assert sizes == {(("domain", "example.com"),): len(obama)}


def test_a_dead_workers_requests_stay_counted_and_its_live_gauges_vanish(
    server_env: dict[str, str], admin: str
) -> None:
    with ServerProcess(server_env, "--workers", "2") as server:
        made = sum(requests_from_both_workers(server.url, admin, at_least=10).values())
        # An upload the victim has started and waits on the body of: a request in progress in that worker.
        stalled = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            stalled.request("GET", WHOAMI, headers=auth(admin))
            victim = int(json.loads(stalled.getresponse().read())["worker_pid"])
            made += 1
            stalled.putrequest("POST", RECOGNIZE)
            stalled.putheader("Authorization", admin)
            stalled.putheader("Content-Type", "multipart/form-data; boundary=b")
            stalled.putheader("Content-Length", "100000")
            stalled.endheaders(b'--b\r\nContent-Disposition: form-data; name="photos[]"; filename="a.jpg"\r\n\r\n')
            wait_for(lambda: total(scrape(server.url), "facerec_http_requests_in_progress", path=RECOGNIZE) == 1)

            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: total(scrape(server.url), "facerec_http_requests_in_progress", path=RECOGNIZE) == 0)
        finally:
            stalled.close()
        assert total(scrape(server.url), "facerec_http_requests_total", path=WHOAMI) == made
        replacement = requests_from_both_workers(server.url, admin, at_least=1)
        assert victim not in replacement
        made += sum(replacement.values())
        assert settled(lambda: whoami_durations(server.url), made) == made
        assert total(scrape(server.url), "facerec_http_requests_total", path=WHOAMI) == made


def test_the_private_metrics_directory_is_removed_when_the_server_stops(server_env: dict[str, str], admin: str) -> None:
    server = ServerProcess(server_env, "--workers", "2").start()
    try:
        answered = requests_from_both_workers(server.url, admin, at_least=2)
        [shared] = private_dirs(server_env)
        assert {f"counter_{pid}.db" for pid in answered} <= {path.name for path in shared.iterdir()}
    finally:
        server.stop()
    assert server.process is not None
    assert server.process.returncode == 0
    assert private_dirs(server_env) == []


def test_an_operators_multiproc_dir_is_shared_and_left_in_place(
    server_env: dict[str, str], admin: str, tmp_path: Path
) -> None:
    theirs = tmp_path / "operator-metrics"
    with ServerProcess({**server_env, MULTIPROC_DIR_ENV: str(theirs)}, "--workers", "2") as server:
        made = sum(requests_from_both_workers(server.url, admin, at_least=10).values())
        assert settled(lambda: whoami_durations(server.url), made) == made
        assert total(scrape(server.url), "facerec_http_requests_total", path=WHOAMI) == made
        assert private_dirs(server_env) == []
    assert len(list(theirs.glob("counter_*.db"))) == 2


def test_a_single_worker_serves_its_own_metrics_as_before_without_a_directory(
    server_env: dict[str, str], admin: str
) -> None:
    with ServerProcess(server_env) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        pids = {worker_pid(http, admin) for _ in range(3)}
        values = scrape(server.url)
        assert total(values, "facerec_http_requests_total", path=WHOAMI) == 3
        # The per-process collectors of the default registry, which multiprocess mode cannot combine.
        assert ("process_resident_memory_bytes", ()) in values
        assert private_dirs(server_env) == []
    assert len(pids) == 1
