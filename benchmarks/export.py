"""CSV export of a large batch through the live server: rows per second and the server's memory.

A batch of N entries is written straight into the server's database, then downloaded from
``/export`` while the server's resident memory is sampled.

Usage: python benchmarks/export.py [--entries 100000]
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import click
import httpx
from sqlalchemy import insert

from benchmarks._common import current_rss_mb, live_server, machine
from service.common.time import utcnow
from service.db.models import Batch, BatchEntry
from service.db.session import create_db_engine

BATCH_ID = "20240101_000000_0001"


def fill_batch(database_url: str, entries: int) -> None:
    """A batch of ``entries`` recognised photos with three matches each."""
    engine = create_db_engine(database_url)
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(
            insert(Batch).values(
                id=BATCH_ID,
                domain="bench",
                created_at=now,
                threshold=70.0,
                total_uploaded=entries,
                total_processed=entries,
                recognized_count=entries,
                avg_confidence=90.0,
                persons_list=["Person 1"],
                errors=[],
            )
        )
        rows = [
            {
                "batch_id": BATCH_ID,
                "position": i,
                "timestamp": now + timedelta(milliseconds=i),
                "filename": f"photo_{i:06d}.jpg",
                "recognized": True,
                "primary_person": "Person 1",
                "primary_confidence": 91.2,
                "match1_person": "Person 1",
                "match1_confidence": 91.2,
                "match2_person": "Person 2",
                "match2_confidence": 40.1,
                "match3_person": "Person 3",
                "match3_confidence": 12.5,
                "face_count": 1,
                "processing_time_ms": 60,
                "faces": [],
            }
            for i in range(entries)
        ]
        for start in range(0, entries, 10_000):
            connection.execute(insert(BatchEntry), rows[start : start + 10_000])
    engine.dispose()


@click.command()
@click.option("--entries", default=100_000, show_default=True)
def main(entries: int) -> None:
    """Print export throughput and the server's memory before, during and after."""
    with live_server(port=8766) as server:
        fill_batch(server.env["FACEREC_DATABASE_URL"], entries)
        token = server.cli("token", "create", "--domain", "bench").strip().splitlines()[-1]
        pid = server.process.pid
        baseline = current_rss_mb(pid)
        peak = [baseline]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], current_rss_mb(pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.perf_counter()
        size = 0
        lines = 0
        with httpx.stream(
            "GET",
            f"{server.url}/api/batch-photos/logs/{BATCH_ID}/export",
            headers={"Authorization": token},
            timeout=600,
        ) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                size += len(chunk)
                lines += chunk.count(b"\n")
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
    click.echo(f"machine: {machine()}")
    click.echo(
        f"{'entries':>8} {'seconds':>8} {'rows/s':>9} {'MB':>6} {'server RSS before':>18} {'peak':>6} {'growth':>7}"
    )
    click.echo(
        f"{lines - 1:>8} {elapsed:>8.2f} {(lines - 1) / elapsed:>9.0f} {size / 1e6:>6.1f} "
        f"{baseline:>15.0f} MB {peak[0]:>6.0f} {peak[0] - baseline:>6.0f}M"
    )


if __name__ == "__main__":
    main()
