"""Concurrent clients beyond the queue: some 503 with Retry-After, never a hang, never a lost batch."""

from __future__ import annotations

import threading
from collections.abc import Callable

from service.recognition.faces import FaceModel
from service.settings import Settings
from tests.api.load_clients import LoadReport, missing_batches, run_clients
from tests.conftest import KNN, LiveServer, worker_held


def test_overload_is_refused_politely_and_every_accepted_batch_is_stored(
    settings: Settings, face_model: FaceModel, tokens: Callable[..., str]
) -> None:
    crowded = settings.model_copy(update={"inference_workers": 1, "max_queued_batches": 1})
    token = tokens("load.example", "user")
    photos = sorted((KNN / "test").iterdir())
    report = LoadReport()
    with LiveServer(crowded, model=face_model) as server:
        # The worker is held by another job until the clients have been refused at least once: six clients
        # against room for one more batch are refused however fast this machine is.
        with worker_held(server) as release:
            clients = threading.Thread(
                target=run_clients,
                args=(server.url, token, 6, 3, photos),
                # A tenth of each Retry-After: the server's answers are under test, not the clients' patience.
                kwargs={"max_retries": 1000, "report": report, "pause": 0.1},
            )
            clients.start()
            while report.statuses[503] == 0 and clients.is_alive():
                release.wait(0.01)
        clients.join()
        lost = missing_batches(server.url, token, report)
    assert report.errors == []
    assert set(report.statuses) <= {200, 503}
    assert report.statuses[503] > 0
    assert len(report.retry_after) == report.statuses[503]
    assert all(value is not None and int(value) >= 1 for value in report.retry_after)
    assert report.gave_up == 0
    assert len(report.accepted) == 18
    assert lost == []
