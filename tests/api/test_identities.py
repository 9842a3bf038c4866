"""Enrollment endpoints: admin only, domain scoped, and search follows every change at once."""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
import pytest
from PIL import Image

from tests.conftest import FACES, KNN, auth, enroll_knn_train, photo_files

OBAMA_TRAIN = sorted((KNN / "train" / "obama").iterdir())
OBAMA_PROBE = KNN / "test" / "obama1.jpg"


def create(client: httpx.Client, token: str, name: str, *paths) -> httpx.Response:  # type: ignore[no-untyped-def]
    return client.post("/api/identities", headers=auth(token), data={"name": name}, files=photo_files(*paths))


def primary_person(client: httpx.Client, token: str, path=OBAMA_PROBE) -> str:  # type: ignore[no-untyped-def]
    body = client.post("/api/batch-photos/recognize", headers=auth(token), files=photo_files(path)).json()
    entry = client.get(body["log_url"], headers=auth(token)).json()["entries"][0]
    return str(entry["primary_result"]["person"])


def test_enrolling_a_person_answers_201_with_the_identity_and_enrolled_faces(client: httpx.Client, admin: str) -> None:
    response = create(client, admin, "Barack Obama", *OBAMA_TRAIN)
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    assert body["identity"]["name"] == "Barack Obama"
    assert body["identity"]["face_count"] == 2
    assert set(body["identity"]) >= {"id", "name", "face_count", "created_at"}
    assert [e["filename"] for e in body["enrolled"]] == [p.name for p in OBAMA_TRAIN]
    assert all(isinstance(e["face_id"], int) for e in body["enrolled"])
    assert body["rejected"] == []


def test_an_existing_name_is_a_409(client: httpx.Client, admin: str) -> None:
    create(client, admin, "Obama", *OBAMA_TRAIN[:1])
    response = create(client, admin, "Obama", *OBAMA_TRAIN[1:])
    assert response.status_code == 409
    assert response.json()["success"] is False


def test_photos_without_faces_are_rejected_and_no_face_at_all_creates_nothing(client: httpx.Client, admin: str) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300), (200, 200, 200)).save(buffer, "JPEG")
    files = [("photos[]", ("wall.jpg", buffer.getvalue(), "image/jpeg")), ("photos[]", ("t.txt", b"hi", "text/plain"))]
    response = client.post("/api/identities", headers=auth(admin), data={"name": "Nobody"}, files=files)
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert {r["filename"]: r["error"] for r in body["rejected"]}["wall.jpg"] == "No face found in the photo"
    assert client.get("/api/identities", headers=auth(admin)).json()["total"] == 0


def test_a_group_photo_alone_lists_its_faces_and_enrolls_the_one_chosen(client: httpx.Client, admin: str) -> None:
    # #17 changes this: a new person from one group photo is no longer its largest face without asking.
    group = KNN / "test" / "obama_and_biden.jpg"
    refused = create(client, admin, "Obama", group)
    assert refused.status_code == 400
    assert [f["face"] for f in refused.json()["faces"]] == [0, 1, 2]
    assert client.get("/api/identities", headers=auth(admin)).json()["total"] == 0
    chosen = client.post(
        "/api/identities", headers=auth(admin), data={"name": "Obama", "face": "0"}, files=photo_files(group)
    )
    assert chosen.status_code == 201, chosen.text
    assert primary_person(client, admin) == "Obama"


def test_the_same_photo_is_not_stored_twice_for_a_person(client: httpx.Client, admin: str) -> None:
    identity = create(client, admin, "Obama", OBAMA_TRAIN[0]).json()["identity"]
    response = client.post(
        f"/api/identities/{identity['id']}/photos", headers=auth(admin), files=photo_files(*OBAMA_TRAIN)
    )
    assert response.status_code == 201
    body = response.json()
    assert [e["filename"] for e in body["enrolled"]] == [OBAMA_TRAIN[1].name]
    assert "already enrolled" in body["rejected"][0]["error"]
    assert body["identity"]["face_count"] == 2


def test_list_searches_names_case_insensitively_with_paging(client: httpx.Client, admin: str) -> None:
    enroll_knn_train(client, admin)
    everyone = client.get("/api/identities", headers=auth(admin)).json()
    assert everyone["total"] == 5
    assert [i["name"] for i in everyone["identities"]] == sorted(i["name"] for i in everyone["identities"])
    found = client.get("/api/identities?q=OBA", headers=auth(admin)).json()
    assert [i["name"] for i in found["identities"]] == ["obama"]
    assert found["identities"][0]["face_count"] == 2
    page = client.get("/api/identities?limit=2&offset=4", headers=auth(admin)).json()
    assert (page["total"], len(page["identities"])) == (5, 1)


def test_get_shows_the_faces_with_thumbnails(client: httpx.Client, admin: str) -> None:
    identity = create(client, admin, "Obama", *OBAMA_TRAIN).json()["identity"]
    body = client.get(f"/api/identities/{identity['id']}", headers=auth(admin)).json()
    faces = body["identity"]["faces"]
    assert len(faces) == 2
    assert set(faces[0]) >= {"id", "filename", "det_score", "created_at"}
    thumbnail = client.get(faces[0]["thumbnail_url"], headers=auth(admin))
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumbnail.content)).size == (112, 112)
    assert client.get(faces[0]["thumbnail_url"]).status_code == 401


def test_the_full_lifecycle_through_the_api(client: httpx.Client, admin: str) -> None:
    ids = enroll_knn_train(client, admin)
    assert primary_person(client, admin) == "obama"
    old_batch = client.get("/api/batch-photos/logs", headers=auth(admin)).json()["batches"][0]["batch_id"]

    renamed = client.patch(f"/api/identities/{ids['obama']}", headers=auth(admin), json={"name": "Barack Obama"})
    assert renamed.status_code == 200
    assert renamed.json()["identity"]["name"] == "Barack Obama"
    assert primary_person(client, admin) == "Barack Obama"
    earlier = client.get(f"/api/batch-photos/logs/{old_batch}", headers=auth(admin)).json()
    assert earlier["entries"][0]["primary_result"]["person"] == "obama"  # history keeps the recorded name

    faces = client.get(f"/api/identities/{ids['obama']}", headers=auth(admin)).json()["identity"]["faces"]
    gone = client.delete(f"/api/identities/{ids['obama']}/faces/{faces[0]['id']}", headers=auth(admin))
    assert gone.status_code == 200
    assert gone.json()["success"] is True
    assert primary_person(client, admin) == "Barack Obama"  # one face left

    deleted = client.delete(f"/api/identities/{ids['obama']}", headers=auth(admin))
    assert deleted.status_code == 200
    assert primary_person(client, admin) == "Unknown"
    assert client.get(f"/api/identities/{ids['obama']}", headers=auth(admin)).status_code == 404


def test_a_rename_to_a_taken_name_is_a_409(client: httpx.Client, admin: str) -> None:
    ids = enroll_knn_train(client, admin)
    response = client.patch(f"/api/identities/{ids['obama']}", headers=auth(admin), json={"name": "biden"})
    assert response.status_code == 409
    assert response.json()["success"] is False


@pytest.mark.parametrize("body", [{"name": ""}, {"name": "   "}, {"nom": "x"}, {"name": 5}])
def test_a_bad_rename_body_is_a_400(client: httpx.Client, admin: str, body: dict[str, object]) -> None:
    identity = create(client, admin, "Obama", OBAMA_TRAIN[0]).json()["identity"]
    response = client.patch(f"/api/identities/{identity['id']}", headers=auth(admin), json=body)
    assert response.status_code == 400
    assert response.json()["success"] is False


def test_user_tokens_get_403_on_every_enrollment_route(client: httpx.Client, tokens: Callable[..., str]) -> None:
    user = auth(tokens("example.com", "user"))
    photos = photo_files(OBAMA_TRAIN[0])
    for method, path, kwargs in (
        ("GET", "/api/identities", {}),
        ("POST", "/api/identities", {"data": {"name": "x"}, "files": photos}),
        ("GET", "/api/identities/1", {}),
        ("PATCH", "/api/identities/1", {"json": {"name": "y"}}),
        ("POST", "/api/identities/1/photos", {"files": photos}),
        ("DELETE", "/api/identities/1/faces/1", {}),
        ("DELETE", "/api/identities/1", {}),
    ):
        response = client.request(method, path, headers=user, **kwargs)
        assert response.status_code == 403, (method, path)
        assert response.json()["success"] is False


def test_another_domains_people_are_404_and_never_matched(client: httpx.Client, tokens: Callable[..., str]) -> None:
    mine, theirs = tokens("a.example", "admin"), tokens("b.example", "admin")
    identity = create(client, mine, "Obama", *OBAMA_TRAIN).json()["identity"]
    face_id = client.get(f"/api/identities/{identity['id']}", headers=auth(mine)).json()["identity"]["faces"][0]["id"]
    for method, path in (
        ("GET", f"/api/identities/{identity['id']}"),
        ("DELETE", f"/api/identities/{identity['id']}/faces/{face_id}"),
        ("DELETE", f"/api/identities/{identity['id']}"),
        ("GET", f"/api/identities/{identity['id']}/faces/{face_id}/thumbnail"),
    ):
        assert client.request(method, path, headers=auth(theirs)).status_code == 404, path
    assert (
        client.patch(f"/api/identities/{identity['id']}", headers=auth(theirs), json={"name": "z"}).status_code == 404
    )
    assert (
        client.post(
            f"/api/identities/{identity['id']}/photos", headers=auth(theirs), files=photo_files(OBAMA_TRAIN[0])
        ).status_code
        == 404
    )
    assert primary_person(client, theirs) == "Unknown"
    assert primary_person(client, mine) == "Obama"


def test_unknown_ids_are_404(client: httpx.Client, admin: str) -> None:
    for method, path in (
        ("GET", "/api/identities/999"),
        ("DELETE", "/api/identities/999"),
        ("DELETE", "/api/identities/999/faces/1"),
    ):
        response = client.request(method, path, headers=auth(admin))
        assert response.status_code == 404
        assert response.json()["success"] is False


def test_strangers_are_not_matched_to_an_enrolled_gallery(client: httpx.Client, admin: str) -> None:
    enroll_knn_train(client, admin)
    stranger = FACES / "facenet_pytorch" / "data" / "test_images" / "paul_rudd" / "1.jpg"
    assert primary_person(client, admin, stranger) == "Unknown"
