"""/metrics exposes request, pipeline and index figures in Prometheus text format."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from service.recognition.faces import FaceModel
from service.settings import Settings
from tests.conftest import KNN, STRANGERS, LiveServer, auth, enroll_knn_train, photo_files


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_photos_faces_results_requests_and_index_size(
    client: httpx.Client, tokens: Callable[..., str]
) -> None:
    admin = tokens("example.com", "admin")
    enroll_knn_train(client, admin)
    files = [
        *photo_files(KNN / "test" / "obama_and_biden.jpg", STRANGERS[0]),
        ("photos[]", ("bad.jpg", b"nope", "image/jpeg")),
    ]
    assert client.post("/api/batch-photos/recognize", headers=auth(admin), files=files).status_code == 200

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = samples(response.text)
    assert values[("facerec_batches_total", ())] == 1
    assert values[("facerec_photos_total", (("outcome", "processed"),))] == 2
    assert values[("facerec_photos_total", (("outcome", "rejected"),))] == 1
    assert values[("facerec_faces_total", ())] >= 4
    assert values[("facerec_photo_results_total", (("result", "recognized"),))] == 1
    assert values[("facerec_photo_results_total", (("result", "unknown"),))] == 1
    assert values[("facerec_index_faces", (("domain", "example.com"),))] == 9
    for stage in ("decode", "detect", "embed", "search"):
        assert values[("facerec_stage_seconds_count", (("stage", stage),))] >= 1
    requests = [
        v
        for (name, labels), v in values.items()
        if name == "facerec_http_requests_total" and ("path", "/api/batch-photos/recognize") in labels
    ]
    assert sum(requests) >= 1


def test_a_metrics_token_protects_the_route_when_configured(settings: Settings, face_model: FaceModel) -> None:
    guarded = settings.model_copy(update={"metrics_token": "scrape-secret"})
    with LiveServer(guarded, model=face_model) as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/metrics").status_code == 401
        assert http.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert http.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200


def test_without_a_metrics_token_only_loopback_clients_may_scrape(settings: Settings, face_model: FaceModel) -> None:
    behind_proxy = settings.model_copy(update={"trusted_proxies": "127.0.0.1"})
    with LiveServer(behind_proxy, model=face_model) as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/metrics").status_code == 200
        remote = http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.5"})
        assert remote.status_code == 403
        assert "FACEREC_METRICS_TOKEN" in remote.json()["error"]


def test_with_a_metrics_token_a_remote_scraper_holding_it_is_served(settings: Settings, face_model: FaceModel) -> None:
    guarded = settings.model_copy(update={"trusted_proxies": "127.0.0.1", "metrics_token": "scrape-secret"})
    with LiveServer(guarded, model=face_model) as server, httpx.Client(base_url=server.url) as http:
        response = http.get(
            "/metrics", headers={"X-Forwarded-For": "203.0.113.5", "Authorization": "Bearer scrape-secret"}
        )
    assert response.status_code == 200
