"""Unknown faces (#18): grouped into people, named, dismissed — real models, photos, server and database."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FACES, KNN, auth

EXAMPLES = FACES / "face_recognition" / "examples"
STRANGERS = FACES / "facenet_pytorch" / "data" / "test_images"
# Single-face photos of the shared set and who is in them.
LABELLED = {
    **{p: p.parent.name for p in sorted((KNN / "train").glob("*/*"))},
    KNN / "test" / "obama1.jpg": "obama",
    KNN / "test" / "alex_lacamoire1.jpg": "alex_lacamoire",
    KNN / "test" / "johnsnow_test1.jpg": "kit_harington",
    EXAMPLES / "obama-480p.jpg": "obama",
    EXAMPLES / "obama_small.jpg": "obama",
    EXAMPLES / "biden.jpg": "biden",
    EXAMPLES / "lin-manuel-miranda.png": "lin_manuel_miranda",
    **{p: p.parent.name for p in sorted(STRANGERS.glob("*/1.jpg"))},
}


def upload(client: httpx.Client, token: str, photos: dict[Path, str]) -> str:
    """A batch of the photos, each uploaded as ``<label>__<n>.<ext>`` so a face's person can be read back."""
    files = [
        ("photos[]", (f"{label}__{n}{path.suffix}", path.read_bytes(), "application/octet-stream"))
        for n, (path, label) in enumerate(photos.items())
    ]
    response = client.post("/api/batch-photos/recognize", headers=auth(token), files=files)
    assert response.status_code == 200, response.text
    return str(response.json()["batch_id"])


def clusters_of(client: httpx.Client, token: str, batch_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/batch-photos/logs/{batch_id}/unknown-faces", headers=auth(token))
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()["clusters"]
    return body


def person_of(face: dict[str, Any]) -> str:
    return str(face["filename"]).split("__")[0]


def test_with_nobody_enrolled_each_group_is_one_person(client: httpx.Client, admin: str) -> None:
    clusters = clusters_of(client, admin, upload(client, admin, LABELLED))
    faces = sum(c["size"] for c in clusters)
    assert faces == len(LABELLED)
    majority = sum(Counter(person_of(f) for f in c["faces"]).most_common(1)[0][1] for c in clusters)
    assert majority / faces >= 0.95  # purity
    biggest = {person_of(c["faces"][0]): c["size"] for c in clusters}
    assert biggest["obama"] == sum(1 for label in LABELLED.values() if label == "obama")  # complete here too
    sizes = [c["size"] for c in clusters]
    assert sizes == sorted(sizes, reverse=True)  # biggest first, single faces last
    assert all(f["crop_url"] for c in clusters for f in c["faces"])


def test_naming_a_group_enrolls_the_person_and_relabels_the_batch(client: httpx.Client, admin: str) -> None:
    photos = {p: label for p, label in LABELLED.items() if label in ("obama", "biden")}
    batch_id = upload(client, admin, photos)
    [obama] = [c for c in clusters_of(client, admin, batch_id) if person_of(c["faces"][0]) == "obama"]
    response = client.post(
        "/api/unknown-faces/name",
        headers=auth(admin),
        json={"face_ids": [f["face_id"] for f in obama["faces"]], "name": "Barack Obama"},
    )
    assert response.status_code == 200, response.text
    named = response.json()
    assert (named["identity"]["name"], named["named"]) == ("Barack Obama", obama["size"])
    assert len(named["enrolled"]) >= 1
    log = client.get(f"/api/batch-photos/logs/{batch_id}", headers=auth(admin)).json()
    relabelled = [e for e in log["entries"] if e["filename"].startswith("obama")]
    assert all(e["primary_result"]["person"] == "Barack Obama" and e["faces"][0]["corrected"] for e in relabelled)
    assert log["summary"]["persons_list"] == ["Barack Obama"]
    rows = list(
        csv.DictReader(io.StringIO(client.get(f"/api/batch-photos/logs/{batch_id}/export", headers=auth(admin)).text))
    )
    assert {r["Primary Person"] for r in rows if r["Filename"].startswith("obama")} == {"Barack Obama"}
    assert all(person_of(f) != "obama" for c in clusters_of(client, admin, batch_id) for f in c["faces"])
    # A new batch now recognises him.
    again = client.post(
        "/api/batch-photos/recognize",
        headers=auth(admin),
        files=[("photos[]", ("o.jpg", (EXAMPLES / "obama2.jpg").read_bytes(), "image/jpeg"))],
    ).json()
    assert again["summary"]["persons_list"] == ["Barack Obama"]


def test_a_person_seen_in_several_batches_shows_up_once_across_batches(client: httpx.Client, admin: str) -> None:
    first = upload(client, admin, {KNN / "test" / "obama1.jpg": "obama", EXAMPLES / "biden.jpg": "biden"})
    second = upload(client, admin, {EXAMPLES / "obama-480p.jpg": "obama"})
    body = client.get("/api/unknown-faces", headers=auth(admin)).json()
    [obama] = [c for c in body["clusters"] if person_of(c["faces"][0]) == "obama"]
    assert {f["batch_id"] for f in obama["faces"]} == {first, second}
    only_second = client.get("/api/unknown-faces", params={"batch": second}, headers=auth(admin)).json()
    assert [c["size"] for c in only_second["clusters"]] == [1]


def test_a_group_can_be_added_to_an_enrolled_person(client: httpx.Client, admin: str) -> None:
    biden = client.post(
        "/api/identities",
        headers=auth(admin),
        data={"name": "Joe Biden"},
        files=[("photos[]", ("b.jpg", (KNN / "train" / "biden" / "biden.jpg").read_bytes(), "image/jpeg"))],
    ).json()["identity"]
    batch_id = upload(client, admin, {STRANGERS / "paul_rudd" / "1.jpg": "paul_rudd"})
    [rudd] = clusters_of(client, admin, batch_id)
    response = client.post(
        "/api/unknown-faces/name",
        headers=auth(admin),
        json={"face_ids": [rudd["faces"][0]["face_id"]], "identity_id": biden["id"]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["identity"]["face_count"] == 2


def test_naming_a_group_that_looks_like_someone_enrolled_needs_force(client: httpx.Client, admin: str) -> None:
    client.post(
        "/api/identities",
        headers=auth(admin),
        data={"name": "Barack Obama"},
        files=[("photos[]", ("o.jpg", (KNN / "train" / "obama" / "obama.jpg").read_bytes(), "image/jpeg"))],
    )
    batch_id = upload(client, admin, {STRANGERS / "kate_siegel" / "1.jpg": "kate"})
    log = client.get(f"/api/batch-photos/logs/{batch_id}", headers=auth(admin)).json()
    assert log["entries"][0]["recognized"] is False
    # An obama face recognised below a strict threshold stays unknown; naming it as someone new is refused.
    strict = client.post(
        "/api/batch-photos/recognize",
        headers=auth(admin),
        data={"threshold": "100"},
        files=[("photos[]", ("o1.jpg", (KNN / "test" / "obama1.jpg").read_bytes(), "image/jpeg"))],
    ).json()
    [cluster] = clusters_of(client, admin, strict["batch_id"])
    body = {"face_ids": [cluster["faces"][0]["face_id"]], "name": "The President"}
    refused = client.post("/api/unknown-faces/name", headers=auth(admin), json=body)
    assert refused.status_code == 409
    assert refused.json()["existing"]["name"] == "Barack Obama"
    forced = client.post("/api/unknown-faces/name", headers=auth(admin), json={**body, "force": True})
    assert forced.status_code == 200, forced.text


def test_dismissed_faces_leave_the_groups(client: httpx.Client, admin: str) -> None:
    batch_id = upload(client, admin, {STRANGERS / "paul_rudd" / "1.jpg": "rudd", EXAMPLES / "biden.jpg": "biden"})
    clusters = clusters_of(client, admin, batch_id)
    gone = clusters[0]["faces"][0]["face_id"]
    response = client.post("/api/unknown-faces/dismiss", headers=auth(admin), json={"face_ids": [gone]})
    assert response.status_code == 200
    assert gone not in {f["face_id"] for c in clusters_of(client, admin, batch_id) for f in c["faces"]}


def dismissed_of(client: httpx.Client, token: str, batch_id: str) -> list[int]:
    response = client.get(f"/api/batch-photos/logs/{batch_id}/dismissed-faces", headers=auth(token))
    assert response.status_code == 200, response.text
    return [face["face_id"] for face in response.json()["faces"]]


def test_dismissed_faces_are_listed_with_their_batch(client: httpx.Client, admin: str) -> None:
    batch_id = upload(client, admin, {STRANGERS / "paul_rudd" / "1.jpg": "rudd", EXAMPLES / "biden.jpg": "biden"})
    assert dismissed_of(client, admin, batch_id) == []
    face = clusters_of(client, admin, batch_id)[0]["faces"][0]
    client.post("/api/unknown-faces/dismiss", headers=auth(admin), json={"face_ids": [face["face_id"]]})
    response = client.get(f"/api/batch-photos/logs/{batch_id}/dismissed-faces", headers=auth(admin))
    assert response.json()["faces"] == [face]


def test_a_dismissed_face_put_back_is_grouped_again(client: httpx.Client, admin: str) -> None:
    batch_id = upload(client, admin, {STRANGERS / "paul_rudd" / "1.jpg": "rudd", EXAMPLES / "biden.jpg": "biden"})
    before = clusters_of(client, admin, batch_id)
    gone = before[0]["faces"][0]["face_id"]
    client.post("/api/unknown-faces/dismiss", headers=auth(admin), json={"face_ids": [gone]})
    response = client.post("/api/unknown-faces/restore", headers=auth(admin), json={"face_ids": [gone]})
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "1 face(s) put back"
    assert clusters_of(client, admin, batch_id) == before
    assert dismissed_of(client, admin, batch_id) == []


def test_only_an_admin_of_the_domain_puts_faces_back(
    client: httpx.Client, admin: str, tokens: Callable[..., str]
) -> None:
    batch_id = upload(client, admin, {EXAMPLES / "biden.jpg": "biden"})
    [cluster] = clusters_of(client, admin, batch_id)
    body = {"face_ids": [cluster["faces"][0]["face_id"]]}
    client.post("/api/unknown-faces/dismiss", headers=auth(admin), json=body)
    user = tokens("example.com", "user")
    assert client.post("/api/unknown-faces/restore", headers=auth(user), json=body).status_code == 403
    other = tokens("other.org", "admin")
    assert client.post("/api/unknown-faces/restore", headers=auth(other), json=body).status_code == 404
    assert client.get(f"/api/batch-photos/logs/{batch_id}/dismissed-faces", headers=auth(other)).status_code == 404
    assert dismissed_of(client, admin, batch_id) == body["face_ids"]


def test_unknown_faces_stay_in_their_domain(client: httpx.Client, admin: str, tokens: Callable[..., str]) -> None:
    batch_id = upload(client, admin, {EXAMPLES / "biden.jpg": "biden"})
    [cluster] = clusters_of(client, admin, batch_id)
    other = tokens("other.org", "admin")
    assert client.get(f"/api/batch-photos/logs/{batch_id}/unknown-faces", headers=auth(other)).status_code == 404
    assert client.get("/api/unknown-faces", headers=auth(other)).json()["clusters"] == []
    body = {"face_ids": [cluster["faces"][0]["face_id"]], "name": "Joe"}
    assert client.post("/api/unknown-faces/name", headers=auth(other), json=body).status_code == 404
    assert (
        client.post("/api/unknown-faces/name", headers=auth(tokens("example.com", "user")), json=body).status_code
        == 403
    )


@pytest.mark.parametrize(
    "body",
    [{"face_ids": [], "name": "X"}, {"face_ids": [1], "name": "X", "identity_id": 1}, {"face_ids": [1]}],
)
def test_naming_needs_faces_and_exactly_one_of_name_or_identity(
    client: httpx.Client, admin: str, body: dict[str, Any]
) -> None:
    response = client.post("/api/unknown-faces/name", headers=auth(admin), json=body)
    assert response.status_code == 400
