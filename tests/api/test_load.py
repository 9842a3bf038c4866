"""Concurrent clients beyond the queue: some 503 with Retry-After, never a hang, never a lost batch."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.load import missing_batches, run_load
from service.settings import Settings
from tests.conftest import KNN, LiveServer


def test_overload_is_refused_politely_and_every_accepted_batch_is_stored(
    settings: Settings, tokens: Callable[..., str]
) -> None:
    crowded = settings.model_copy(update={"inference_workers": 1, "max_queued_batches": 1})
    token = tokens("load.example", "user")
    photos = sorted((KNN / "test").iterdir())
    with LiveServer(crowded) as server:
        report = run_load(server.url, token, clients=6, batches=3, photos=photos, time_limit=240)
        lost = missing_batches(server.url, token, report)
    assert report.errors == []
    assert set(report.statuses) <= {200, 503}
    assert report.statuses[503] > 0  # six clients against room for two
    assert report.gave_up == 0
    assert len(report.accepted) == 18
    assert lost == []
