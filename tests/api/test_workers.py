"""`facerec serve --workers 2`: two processes on one database see each other's gallery changes at once."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import KNN, ServerProcess, photo_files

PROBE = KNN / "test" / "obama1.jpg"


@pytest.fixture
def two_workers(facerec_env: dict[str, str], admin: str) -> Iterator[str]:
    with ServerProcess({**facerec_env, "FACEREC_INFERENCE_THREADS": "1"}, "--workers", "2") as server:
        pids = worker_pids(server.url, admin, deadline=time.monotonic() + 90)
        assert len(pids) == 2, "both workers should answer"
        yield server.url


def worker_pid(http: httpx.Client, token: str) -> int:
    """The process that answered: ``/api/auth/me`` shows it to admin tokens (health shows it to no one)."""
    return int(http.get("/api/auth/me", headers={"Authorization": token}).json()["worker_pid"])


def worker_pids(url: str, token: str, deadline: float) -> set[int]:
    """Ask on fresh connections until both workers have answered (or time runs out)."""
    pids: set[int] = set()
    while len(pids) < 2 and time.monotonic() < deadline:
        try:
            with httpx.Client(base_url=url, timeout=5) as fresh:
                pids.add(worker_pid(fresh, token))
        except httpx.TransportError:
            time.sleep(0.2)
    return pids


def pinned_clients(url: str, token: str) -> tuple[httpx.Client, httpx.Client]:
    """Two keep-alive connections that landed on different workers."""
    first = httpx.Client(base_url=url, headers={"Authorization": token}, timeout=120)
    first_pid = worker_pid(first, token)
    for _ in range(100):
        second = httpx.Client(base_url=url, headers={"Authorization": token}, timeout=120)
        if worker_pid(second, token) != first_pid:
            return first, second
        second.close()
    raise AssertionError("could not reach a second worker")


def primary_person(http: httpx.Client) -> str:
    body = http.post("/api/batch-photos/recognize", files=photo_files(PROBE)).json()
    return str(http.get(body["log_url"]).json()["entries"][0]["primary_result"]["person"])


def test_every_worker_sees_an_enrollment_and_a_deletion_at_once(two_workers: str, admin: str) -> None:
    one, other = pinned_clients(two_workers, admin)
    try:
        assert primary_person(one) == primary_person(other) == "Unknown"  # both indexes loaded, empty

        created = one.post(
            "/api/identities", data={"name": "obama"}, files=photo_files(*sorted((KNN / "train" / "obama").iterdir()))
        )
        assert created.status_code == 201
        assert [primary_person(other) for _ in range(5)] == ["obama"] * 5

        assert other.delete(f"/api/identities/{created.json()['identity']['id']}").status_code == 200
        assert [primary_person(one) for _ in range(5)] == ["Unknown"] * 5
    finally:
        one.close()
        other.close()
