"""Concurrent clients beyond the queue: some 503 with Retry-After, never a hang, never a lost batch."""

from __future__ import annotations

import threading
from collections.abc import Callable

from benchmarks.load import LoadReport, missing_batches, run_load
from service.settings import Settings
from tests.conftest import KNN, LiveServer, worker_held


def test_overload_is_refused_politely_and_every_accepted_batch_is_stored(
    settings: Settings, tokens: Callable[..., str]
) -> None:
    crowded = settings.model_copy(update={"inference_workers": 1, "max_queued_batches": 1})
    token = tokens("load.example", "user")
    photos = sorted((KNN / "test").iterdir())
    report = LoadReport()
    with LiveServer(crowded) as server:
        # The worker is held by another job until the clients have been refused at least once: six clients
        # against room for one more batch are refused however fast this machine is.
        with worker_held(server) as release:
            clients = threading.Thread(
                target=run_load,
                args=(server.url, token, 6, 3, photos),
                kwargs={"time_limit": None, "max_retries": 1000, "report": report},
            )
            clients.start()
            while report.statuses[503] == 0 and clients.is_alive():
                release.wait(0.01)
        clients.join()
        lost = missing_batches(server.url, token, report)
    assert report.errors == []
    assert set(report.statuses) <= {200, 503}
    assert report.statuses[503] > 0
    assert report.gave_up == 0
    assert len(report.accepted) == 18
    assert lost == []
