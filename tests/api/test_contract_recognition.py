"""Recognition as the contract states it, at its edges: the spec's 100-photo limit (recognition and enrollment)
at the default settings; ``recognized`` exactly at the threshold (design §3: "true when the best match
reaches the threshold"); the request's own threshold stored with the batch; and a request holding more faces
than one recogniser run (32) gets matches for every face."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import FACES, KNN, auth, enroll_knn_train, photo_files

SPEC_LIMIT = 100  # "Maximum batch size: 100 photos per request"
PROBE = KNN / "test" / "obama1.jpg"
ONE_BACKEND = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # about HTTP and models, not SQL


@pytest.fixture
def enrolled(client: httpx.Client, admin: str) -> dict[str, int]:
    return enroll_knn_train(client, admin)


def plain_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 140, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def copies(data: bytes, count: int) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("photos[]", (f"p{i:03d}.jpg", data, "image/jpeg")) for i in range(count)]


def recognize(client: httpx.Client, token: str, *paths: Path, **data: str) -> dict[str, Any]:
    response = client.post("/api/batch-photos/recognize", headers=auth(token), files=photo_files(*paths), data=data)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stored_log(client: httpx.Client, token: str, body: dict[str, Any]) -> dict[str, Any]:
    log: dict[str, Any] = client.get(body["log_url"], headers=auth(token)).json()
    return log


# ----- the 100-photo limit ---------------------------------------------------------------------------------
@ONE_BACKEND
def test_a_batch_of_exactly_100_photos_is_accepted(client: httpx.Client, user: str) -> None:
    response = client.post("/api/batch-photos/recognize", headers=auth(user), files=copies(plain_jpeg(), SPEC_LIMIT))
    assert response.status_code == 200, response.text
    assert (response.json()["total_uploaded"], response.json()["total_processed"]) == (SPEC_LIMIT, SPEC_LIMIT)


def test_a_batch_of_101_photos_is_the_specs_400_and_nothing_is_stored(client: httpx.Client, user: str) -> None:
    files = copies(plain_jpeg(), SPEC_LIMIT + 1)
    response = client.post("/api/batch-photos/recognize", headers=auth(user), files=files)
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "error": f"Batch size exceeds maximum of {SPEC_LIMIT} photos ({SPEC_LIMIT + 1} uploaded)",
    }
    assert client.get("/api/batch-photos/logs", headers=auth(user)).json()["total"] == 0


@ONE_BACKEND
def test_an_enrollment_of_100_photos_is_accepted(client: httpx.Client, admin: str) -> None:
    files = copies(PROBE.read_bytes(), SPEC_LIMIT)
    response = client.post("/api/identities", headers=auth(admin), data={"name": "Obama"}, files=files)
    assert response.status_code == 201, response.text
    body = response.json()
    assert len(body["enrolled"]) == 1  # the same photo 100 times: one face
    assert len(body["rejected"]) == SPEC_LIMIT - 1


def test_an_enrollment_of_101_photos_is_a_400_on_both_enrollment_routes(client: httpx.Client, admin: str) -> None:
    person = client.post(
        "/api/identities", headers=auth(admin), data={"name": "Obama"}, files=photo_files(PROBE)
    ).json()["identity"]
    files = copies(PROBE.read_bytes(), SPEC_LIMIT + 1)
    new = client.post("/api/identities", headers=auth(admin), data={"name": "Someone"}, files=files)
    more = client.post(f"/api/identities/{person['id']}/photos", headers=auth(admin), files=files)
    for response in (new, more):
        assert response.status_code == 400
        assert response.json() == {"success": False, "error": f"At most {SPEC_LIMIT} photos per request"}
    assert [i["name"] for i in client.get("/api/identities", headers=auth(admin)).json()["identities"]] == ["Obama"]
    assert client.get(f"/api/identities/{person['id']}", headers=auth(admin)).json()["identity"]["face_count"] == 1


# ----- the threshold ---------------------------------------------------------------------------------------
def best_confidence(client: httpx.Client, token: str) -> float:
    """The reported confidence of the probe's best match at the default threshold."""
    entry = stored_log(client, token, recognize(client, token, PROBE))["entries"][0]
    confidence = entry["top_3_matches"][0]["confidence"]
    assert entry["top_3_matches"][0]["person"] == "obama"
    assert confidence != 70.0  # differs from the default, so a batch that stored the default would show
    return float(confidence)


def test_a_best_match_exactly_at_the_threshold_is_recognised(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    confidence = best_confidence(client, admin)
    body = recognize(client, admin, PROBE, threshold=str(confidence))
    entry = stored_log(client, admin, body)["entries"][0]
    assert entry["recognized"] is True
    assert entry["primary_result"] == {"person": "obama", "confidence": confidence}
    assert body["summary"]["recognized_count"] == 1


def test_a_best_match_just_below_the_threshold_is_unknown_yet_keeps_its_matches(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    confidence = best_confidence(client, admin)
    body = recognize(client, admin, PROBE, threshold=str(confidence + 0.01))
    entry = stored_log(client, admin, body)["entries"][0]
    assert entry["recognized"] is False
    assert entry["primary_result"] == {"person": "Unknown", "confidence": None}
    best = entry["top_3_matches"][0]
    assert (best["person"], best["confidence"]) == ("obama", confidence)
    assert (body["summary"]["recognized_count"], body["summary"]["avg_confidence"]) == (0, 0.0)


def test_the_requests_threshold_is_stored_with_the_batch_and_decides_its_stored_entries(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    confidence = best_confidence(client, admin)
    for threshold, recognized in ((confidence, "Yes"), (confidence + 0.01, "No")):
        body = recognize(client, admin, PROBE, threshold=str(threshold))
        assert body["threshold"] == threshold
        log = stored_log(client, admin, body)
        assert log["threshold"] == threshold
        exported = client.get(f"{body['log_url']}/export", headers=auth(admin)).text
        [row] = list(csv.DictReader(io.StringIO(exported)))
        assert (row["Recognized"], row["Primary Person"]) == (recognized, "obama" if recognized == "Yes" else "Unknown")
        listed = client.get("/api/batch-photos/logs?limit=1", headers=auth(admin)).json()["batches"][0]
        assert listed["batch_id"] == body["batch_id"]
        assert listed["summary"]["recognized_count"] == (1 if recognized == "Yes" else 0)


# ----- more faces than one recogniser run ------------------------------------------------------------------
def distinct_photos() -> list[Path]:
    """Every shared photo once (some are byte-for-byte copies of others)."""
    seen: dict[bytes, Path] = {}
    for path in sorted(p for p in FACES.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"}):
        seen.setdefault(path.read_bytes(), path)
    return sorted(seen.values())


def faces_of(log: dict[str, Any]) -> list[list[tuple[str, float]]]:
    """Each face's matches, as (person, similarity), entry by entry."""
    return [[(m["person"], m["similarity"]) for m in face["matches"]] for e in log["entries"] for face in e["faces"]]


@ONE_BACKEND
def test_every_face_of_a_request_with_more_than_32_faces_gets_its_own_matches(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    photos = distinct_photos()
    together = faces_of(stored_log(client, admin, recognize(client, admin, *photos)))
    assert len(together) > 32
    assert all(len(matches) == 3 for matches in together)  # five people enrolled: three for every face

    # The same photos a few at a time (each request well under 32 faces) must give each face the same matches.
    in_small_batches = [
        face
        for start in range(0, len(photos), 6)
        for face in faces_of(stored_log(client, admin, recognize(client, admin, *photos[start : start + 6])))
    ]
    assert len(in_small_batches) == len(together)
    for big, small in zip(together, in_small_batches, strict=True):
        assert [person for person, _ in big] == [person for person, _ in small]
        assert [similarity for _, similarity in big] == pytest.approx([similarity for _, similarity in small], abs=2e-3)
