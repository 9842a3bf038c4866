"""Enrollment you can trust (#17): the right face, no duplicate people, quality checks — each refusal and its
override, through the API with the real models and photos."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageFilter

from tests.conftest import KNN, STRANGERS, auth, photo_files

TRAIN = KNN / "train"
OBAMA_AND_BIDEN = KNN / "test" / "obama_and_biden.jpg"
JOLIE, PAUL_RUDD = (p for p in STRANGERS if p.parent.name in ("angelina_jolie", "paul_rudd"))


def create(client: httpx.Client, token: str, name: str, *paths: Path, **fields: str) -> httpx.Response:
    return client.post("/api/identities", headers=auth(token), data={"name": name, **fields}, files=photo_files(*paths))


def add(client: httpx.Client, token: str, identity_id: int, *paths: Path, **fields: str) -> httpx.Response:
    return client.post(
        f"/api/identities/{identity_id}/photos", headers=auth(token), data=fields, files=photo_files(*paths)
    )


def person_named(client: httpx.Client, token: str, photo: Path) -> str:
    body = client.post("/api/batch-photos/recognize", headers=auth(token), files=photo_files(photo)).json()
    entry: dict[str, Any] = client.get(body["log_url"], headers=auth(token)).json()["entries"][0]
    return str(entry["primary_result"]["person"])


def jpeg(image: Image.Image, name: str) -> list[tuple[str, tuple[str, bytes, str]]]:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return [("photos[]", (name, buffer.getvalue(), "image/jpeg"))]


# ----- the right face --------------------------------------------------------------------------------------------
def test_a_photo_of_someone_else_is_refused_for_a_person_with_the_best_similarity(
    client: httpx.Client, admin: str
) -> None:
    jolie = create(client, admin, "Angelina Jolie", JOLIE).json()["identity"]
    response = add(client, admin, jolie["id"], PAUL_RUDD)
    assert response.status_code == 400
    [refused] = response.json()["rejected"]
    assert refused["error"].startswith("No face in this photo looks like Angelina Jolie: the closest has confidence")
    assert "force=true" in refused["error"]
    assert (refused["reasons"], refused["can_force"]) == (["NOT_LIKE_PERSON"], True)


def test_force_adds_a_photo_that_does_not_look_like_the_person(client: httpx.Client, admin: str) -> None:
    jolie = create(client, admin, "Angelina Jolie", JOLIE).json()["identity"]
    response = add(client, admin, jolie["id"], PAUL_RUDD, force="true")
    assert response.status_code == 201, response.text
    assert response.json()["identity"]["face_count"] == 2


def test_a_group_photo_added_to_a_person_enrolls_their_face_not_the_largest(client: httpx.Client, admin: str) -> None:
    biden = create(client, admin, "Joe Biden", TRAIN / "biden" / "biden.jpg").json()["identity"]
    obama = create(client, admin, "Barack Obama", TRAIN / "obama" / "obama.jpg").json()["identity"]
    response = add(client, admin, biden["id"], OBAMA_AND_BIDEN)
    assert response.status_code == 201, response.text
    [enrolled] = response.json()["enrolled"]
    assert "enrolled face 0" not in enrolled["note"]  # the largest face is Obama's
    assert "the one most like Joe Biden" in enrolled["note"]
    assert obama["id"] != biden["id"]
    assert person_named(client, admin, KNN / "test" / "obama1.jpg") == "Barack Obama"  # no Obama face under Biden


def test_a_new_person_from_a_group_photo_can_name_the_face_by_its_box(client: httpx.Client, admin: str) -> None:
    refused = create(client, admin, "Barack Obama", OBAMA_AND_BIDEN)
    assert refused.status_code == 400
    faces = refused.json()["faces"]
    assert len(faces) == 3
    assert refused.json()["filename"] == "obama_and_biden.jpg"
    box = ",".join(str(v) for v in faces[0]["box"])  # the largest face, Obama's
    response = create(client, admin, "Barack Obama", OBAMA_AND_BIDEN, face=box)
    assert response.status_code == 201, response.text
    assert person_named(client, admin, KNN / "test" / "obama1.jpg") == "Barack Obama"


def test_a_new_person_s_photos_must_show_the_same_face(client: httpx.Client, admin: str) -> None:
    response = create(
        client, admin, "Barack Obama", TRAIN / "obama" / "obama.jpg", TRAIN / "obama" / "obama2.jpg", PAUL_RUDD
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert [e["filename"] for e in body["enrolled"]] == ["obama.jpg", "obama2.jpg"]
    [refused] = body["rejected"]
    assert refused["filename"] == "1.jpg"
    assert "does not look like the person in the other photos" in refused["error"]
    assert (refused["reasons"], refused["can_force"]) == (["NOT_LIKE_OTHER_PHOTOS"], True)


def test_in_several_photos_of_a_new_person_the_face_they_share_is_chosen(client: httpx.Client, admin: str) -> None:
    response = create(client, admin, "Joe Biden", TRAIN / "biden" / "biden.jpg", OBAMA_AND_BIDEN)
    assert response.status_code == 201, response.text
    group = response.json()["enrolled"][1]
    assert "the one that matches the other photos" in group["note"]
    create(client, admin, "Barack Obama", TRAIN / "obama" / "obama.jpg")
    assert person_named(client, admin, KNN / "test" / "obama1.jpg") == "Barack Obama"


def test_a_face_number_that_does_not_exist_is_refused(client: httpx.Client, admin: str) -> None:
    response = create(client, admin, "Joe", OBAMA_AND_BIDEN, face="7")
    assert response.status_code == 400
    assert "face 7 does not exist" in response.json()["error"]
    assert create(client, admin, "Joe", OBAMA_AND_BIDEN, face="left").status_code == 400


# ----- no duplicate people ---------------------------------------------------------------------------------------
def test_a_name_in_another_case_or_spacing_is_the_same_person(client: httpx.Client, admin: str) -> None:
    obama = create(client, admin, "Barack Obama", TRAIN / "obama" / "obama.jpg").json()["identity"]
    response = create(client, admin, "barack  OBAMA", TRAIN / "obama" / "obama2.jpg")
    assert response.status_code == 409
    body = response.json()
    assert body["existing"] == {"id": obama["id"], "name": "Barack Obama"}
    assert f"/api/identities/{obama['id']}/photos" in body["error"]


def test_a_rename_to_another_person_s_name_in_any_case_is_refused(client: httpx.Client, admin: str) -> None:
    create(client, admin, "Joe Biden", TRAIN / "biden" / "biden.jpg")
    obama = create(client, admin, "Barack Obama", TRAIN / "obama" / "obama.jpg").json()["identity"]
    response = client.patch(f"/api/identities/{obama['id']}", headers=auth(admin), json={"name": "joe biden"})
    assert response.status_code == 409
    assert response.json()["existing"]["name"] == "Joe Biden"
    own = client.patch(f"/api/identities/{obama['id']}", headers=auth(admin), json={"name": "BARACK obama"})
    assert own.status_code == 200  # a new spelling of one's own name is fine


def test_a_new_person_who_looks_like_someone_enrolled_is_refused_naming_them(client: httpx.Client, admin: str) -> None:
    obama = create(client, admin, "Barack Obama", TRAIN / "obama" / "obama.jpg").json()["identity"]
    response = create(client, admin, "The President", TRAIN / "obama" / "obama2.jpg")
    assert response.status_code == 409
    body = response.json()
    assert body["existing"]["id"] == obama["id"]
    assert body["existing"]["confidence"] >= 70
    assert "looks like 'Barack Obama'" in body["error"]
    forced = create(client, admin, "The President", TRAIN / "obama" / "obama2.jpg", force="true")
    assert forced.status_code == 201


def test_force_must_be_a_yes_or_no(client: httpx.Client, admin: str) -> None:
    response = create(client, admin, "Obama", TRAIN / "obama" / "obama.jpg", force="maybe")
    assert response.status_code == 400
    assert "force must be true or false" in response.json()["error"]


# ----- quality ---------------------------------------------------------------------------------------------------
def test_a_blurred_face_is_refused_with_its_reason_even_when_forced(client: httpx.Client, admin: str) -> None:
    photo = Image.open(TRAIN / "obama" / "obama.jpg").convert("RGB").filter(ImageFilter.GaussianBlur(6))
    for force in ("false", "true"):
        response = client.post(
            "/api/identities", headers=auth(admin), data={"name": "Obama", "force": force}, files=jpeg(photo, "b.jpg")
        )
        assert response.status_code == 400
        [refused] = response.json()["rejected"]
        assert refused["error"].startswith("Not enrolled: the face is blurred")
        assert "BLURRY" in refused["reasons"]
        assert "can_force" not in refused  # force does not make a blurred face usable


def test_a_tiny_face_is_refused_as_too_small(client: httpx.Client, admin: str) -> None:
    photo = Image.open(TRAIN / "obama" / "obama.jpg").convert("RGB")
    small = photo.resize((photo.width // 8, photo.height // 8))
    canvas = Image.new("RGB", (640, 640), (128, 128, 128))
    canvas.paste(small, (280, 280))
    response = client.post("/api/identities", headers=auth(admin), data={"name": "Obama"}, files=jpeg(canvas, "s.jpg"))
    assert response.status_code == 400
    error = response.json()["rejected"][0]["error"]
    assert "too small" in error or "No face found" in error


# ----- reasons as codes ------------------------------------------------------------------------------------------
def test_each_refused_photo_names_its_reason_as_a_code(client: httpx.Client, admin: str) -> None:
    obama = TRAIN / "obama" / "obama.jpg"
    blank = Image.new("RGB", (400, 400), (200, 200, 200))
    files = [
        *photo_files(obama, obama),
        *jpeg(blank, "blank.jpg"),
        ("photos[]", ("notes.txt", b"not a photo", "text/plain")),
    ]
    response = client.post("/api/identities", headers=auth(admin), data={"name": "Obama"}, files=files)
    assert response.status_code == 201, response.text
    reasons = {r["filename"]: r["reasons"] for r in response.json()["rejected"]}
    assert reasons == {"obama.jpg": ["DUPLICATE_PHOTO"], "blank.jpg": ["NO_FACE"], "notes.txt": ["INVALID_PHOTO"]}
    person = response.json()["identity"]["id"]
    again = add(client, admin, person, obama)
    assert [r["reasons"] for r in again.json()["rejected"]] == [["ALREADY_ENROLLED"]]
