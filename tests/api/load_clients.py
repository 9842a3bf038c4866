"""Concurrent clients for the overload test: each sends its batches over HTTP and retries a 503 after a pause.

The tests' own driver (tests never import ``benchmarks/``); ``benchmarks/load.py`` measures the same traffic
with latencies and a time limit, and its clients wait the whole Retry-After.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import photo_files


@dataclass
class LoadReport:
    """What the clients saw; filled while they run, so a test can watch it."""

    statuses: Counter[int] = field(default_factory=Counter)
    accepted: dict[str, int] = field(default_factory=dict)  # batch id -> photos processed
    errors: list[str] = field(default_factory=list)
    retry_after: list[str | None] = field(default_factory=list)  # the Retry-After header of each 503
    gave_up: int = 0


def run_clients(
    url: str,
    token: str,
    clients: int,
    batches: int,
    photos: list[Path],
    max_retries: int,
    report: LoadReport,
    pause: float = 1.0,
) -> None:
    """``clients`` threads each send ``batches`` batches of ``photos``; a 503 is retried after ``pause`` times its
    Retry-After (1: as the header asks; less: more, and more frequent, retries in less time), at most
    ``max_retries`` times per batch. Returns when every client is done."""
    lock = threading.Lock()
    parts = photo_files(*photos)

    def client() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": token}, timeout=300) as http:
            for _ in range(batches):
                for _attempt in range(max_retries + 1):
                    try:
                        response = http.post("/api/batch-photos/recognize", files=parts)
                    except httpx.HTTPError as exc:
                        with lock:
                            report.errors.append(f"transport: {exc!r}")
                        break
                    with lock:
                        report.statuses[response.status_code] += 1
                    if response.status_code == 503:
                        retry_after = response.headers.get("Retry-After")
                        with lock:
                            report.retry_after.append(retry_after)
                        time.sleep(pause * float(retry_after or "1"))
                        continue
                    with lock:
                        if response.status_code == 200:
                            body = response.json()
                            report.accepted[body["batch_id"]] = body["total_processed"]
                        else:
                            report.errors.append(f"{response.status_code}: {response.text[:200]}")
                    break
                else:
                    with lock:
                        report.gave_up += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def missing_batches(url: str, token: str, report: LoadReport) -> list[str]:
    """Accepted batches that are not stored whole (the answer must match the log)."""
    missing = []
    with httpx.Client(base_url=url, headers={"Authorization": token}, timeout=60) as http:
        for batch_id, processed in report.accepted.items():
            response = http.get(f"/api/batch-photos/logs/{batch_id}")
            if response.status_code != 200 or len(response.json()["entries"]) != processed:
                missing.append(batch_id)
    return missing
