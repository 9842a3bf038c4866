"""Load: N concurrent clients each sending M batches of K photos to a live server on loopback.

Bounded in count and time. Clients honour 503 + Retry-After (up to a few retries). Reports errors,
p50/p95 latency, how many answers were 503, and whether every accepted batch and entry was stored.

Usage: python benchmarks/load.py [--clients 8] [--batches 20] [--photos 10] [--url URL --token T]
Without --url a server is started on a temporary SQLite database.
Hostile uploads (tiled faces, one token flooding beside another, blank huge PNGs, a 1 GB text field)
are measured by ``benchmarks/hostile.py``.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import click
import httpx

from benchmarks._common import FACES, live_server, machine, multipart, shared_photos

MAX_RETRIES = 5


@dataclass
class LoadReport:
    """What a load run saw."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    accepted: dict[str, int] = field(default_factory=dict)  # batch id -> photos processed
    errors: list[str] = field(default_factory=list)
    gave_up: int = 0
    seconds: float = 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def run_load(
    url: str,
    token: str,
    clients: int,
    batches: int,
    photos: list[Path],
    time_limit: float | None = 600,
    max_retries: int = MAX_RETRIES,
    report: LoadReport | None = None,
) -> LoadReport:
    """Drive the server and collect a :class:`LoadReport` (into ``report`` if given, so a caller can watch it
    fill); stops at ``time_limit`` seconds unless that is None."""
    report = report if report is not None else LoadReport()
    lock = threading.Lock()
    deadline = time.monotonic() + time_limit if time_limit is not None else float("inf")
    parts = multipart(photos)

    def client() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": token}, timeout=300) as http:
            for _ in range(batches):
                for _attempt in range(max_retries + 1):
                    if time.monotonic() > deadline:
                        return
                    started = time.perf_counter()
                    try:
                        response = http.post("/api/batch-photos/recognize", files=parts)
                    except httpx.HTTPError as exc:
                        with lock:
                            report.errors.append(f"transport: {exc!r}")
                        break
                    elapsed = time.perf_counter() - started
                    with lock:
                        report.statuses[response.status_code] += 1
                        report.latencies.append(elapsed)
                    if response.status_code == 503:
                        time.sleep(float(response.headers.get("Retry-After", "1")))
                        continue
                    if response.status_code == 200:
                        body = response.json()
                        with lock:
                            report.accepted[body["batch_id"]] = body["total_processed"]
                    else:
                        with lock:
                            report.errors.append(f"{response.status_code}: {response.text[:200]}")
                    break
                else:
                    with lock:
                        report.gave_up += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=time_limit + 60 if time_limit is not None else None)
    report.seconds = time.perf_counter() - started
    return report


def missing_batches(url: str, token: str, report: LoadReport) -> list[str]:
    """Accepted batches that are not stored whole (the answer must match the log)."""
    missing = []
    with httpx.Client(base_url=url, headers={"Authorization": token}, timeout=60) as http:
        for batch_id, processed in report.accepted.items():
            response = http.get(f"/api/batch-photos/logs/{batch_id}")
            if response.status_code != 200 or len(response.json()["entries"]) != processed:
                missing.append(batch_id)
    return missing


@click.command()
@click.option("--clients", default=8, show_default=True)
@click.option("--batches", default=20, show_default=True, help="batches per client")
@click.option("--photos", default=10, show_default=True, help="photos per batch")
@click.option("--time-limit", default=900, show_default=True, help="seconds")
@click.option("--queue", default=8, show_default=True, help="FACEREC_MAX_QUEUED_BATCHES of the started server")
@click.option("--url", default=None, help="an already running server")
@click.option("--token", default=None)
def main(
    clients: int, batches: int, photos: int, time_limit: int, queue: int, url: str | None, token: str | None
) -> None:
    """Print the load report."""
    chosen = shared_photos(photos)

    def report_for(base: str, secret: str) -> None:
        report = run_load(base, secret, clients, batches, chosen, time_limit)
        lost = missing_batches(base, secret, report)
        done = len(report.accepted)
        click.echo(f"machine: {machine()}; {clients} clients x {batches} batches x {photos} photos")
        click.echo(
            f"batches accepted {done}, photos {done * photos} in {report.seconds:.1f} s "
            f"({done * photos / report.seconds:.1f} photos/s)"
        )
        click.echo(f"answers: {dict(sorted(report.statuses.items()))}; gave up after retries: {report.gave_up}")
        click.echo(f"latency p50 {statistics.median(report.latencies):.2f} s, p95 {report.percentile(0.95):.2f} s")
        click.echo(f"errors: {len(report.errors)} {report.errors[:3]}")
        click.echo(f"every accepted batch stored whole: {not lost} (missing: {lost[:5]})")

    if url and token:
        report_for(url, token)
        return
    with live_server(port=8767, max_queued_batches=str(queue)) as server:
        secret = server.cli("token", "create", "--domain", "load", "--admin").strip().splitlines()[-1]
        server.cli(
            "enroll", str(FACES / "face_recognition" / "examples" / "knn_examples" / "train"), "--domain", "load"
        )
        report_for(server.url, secret)


if __name__ == "__main__":
    main()
