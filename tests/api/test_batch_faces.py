"""Every face of a photo counts (#16): people per photo, the persons list, per-face CSV, stored crops,
appearances, the person filter and corrections — real models, photos, server and database."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image, ImageFilter
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import BatchFace, FaceCorrection
from service.recognition.faces import FaceModel
from service.recognition.images import decode_image
from service.recognition.quality import BLURRY, assess
from service.settings import Settings
from tests.conftest import FACES, KNN, LiveServer, auth, enroll_knn_train, photo_files

KIT_WITH_ROSE = KNN / "test" / "kit_with_rose.jpg"
OBAMA_AND_BIDEN = KNN / "test" / "obama_and_biden.jpg"
MULTIFACE = FACES / "facenet_pytorch" / "data" / "multiface.jpg"
LOGS = "/api/batch-photos/logs"


@pytest.fixture
def enrolled(client: httpx.Client, admin: str) -> dict[str, int]:
    return enroll_knn_train(client, admin)


def recognize(client: httpx.Client, token: str, *paths: Any) -> dict[str, Any]:
    response = client.post("/api/batch-photos/recognize", headers=auth(token), files=photo_files(*paths))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def log_of(client: httpx.Client, token: str, batch_id: str) -> dict[str, Any]:
    response = client.get(f"{LOGS}/{batch_id}", headers=auth(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def face_rows(client: httpx.Client, token: str, batch_id: str) -> list[dict[str, str]]:
    response = client.get(f"{LOGS}/{batch_id}/export", params={"rows": "faces"}, headers=auth(token))
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def spec_rows(client: httpx.Client, token: str, batch_id: str) -> list[dict[str, str]]:
    response = client.get(f"{LOGS}/{batch_id}/export", headers=auth(token))
    return list(csv.DictReader(io.StringIO(response.text)))


def correct(client: httpx.Client, token: str, batch_id: str, entry: int, face: int, **body: Any) -> httpx.Response:
    return client.patch(f"{LOGS}/{batch_id}/entries/{entry}/faces/{face}", headers=auth(token), json=body)


# ----- people in a photo ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("photo", "people"),
    [(KIT_WITH_ROSE, {"kit_harington", "rose_leslie"}), (OBAMA_AND_BIDEN, {"obama", "biden"})],
)
def test_every_enrolled_face_of_a_group_photo_is_named_in_people(
    client: httpx.Client, enrolled: dict[str, int], admin: str, photo: Any, people: set[str]
) -> None:
    body = recognize(client, admin, photo)
    [entry] = log_of(client, admin, body["batch_id"])["entries"]
    assert {p["person"] for p in entry["people"]} == people
    assert {p["identity_id"] for p in entry["people"]} == {enrolled[name] for name in people}
    confidences = [p["confidence"] for p in entry["people"]]
    assert confidences == sorted(confidences, reverse=True)  # best first
    for person in entry["people"]:
        assert entry["faces"][person["face"]]["person"] == person["person"]
        assert entry["faces"][person["face"]]["box"] == person["box"]
    assert set(body["summary"]["persons_list"]) == people
    assert body["summary"]["unique_persons"] == len(people)


def test_the_spec_fields_still_describe_the_largest_face(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    body = recognize(client, admin, KIT_WITH_ROSE)
    [entry] = log_of(client, admin, body["batch_id"])["entries"]
    assert entry["primary_result"]["person"] == "kit_harington"
    assert [m["person"] for m in entry["top_3_matches"]] == [m["person"] for m in entry["faces"][0]["matches"]]
    assert body["summary"]["recognized_count"] == 1


def test_every_face_of_a_crowd_photo_is_named_once_each_person_is_enrolled(client: httpx.Client, admin: str) -> None:
    first = log_of(client, admin, recognize(client, admin, MULTIFACE)["batch_id"])["entries"][0]
    boxes = [face["box"] for face in first["faces"]]
    assert len(boxes) == first["metadata"]["face_count"] >= 4
    photo = Image.open(MULTIFACE).convert("RGB")
    for number, (x1, y1, x2, y2) in enumerate(boxes):
        margin = 0.3 * (x2 - x1)
        crop = photo.crop((int(x1 - margin), int(y1 - margin), int(x2 + margin), int(y2 + margin)))
        buffer = io.BytesIO()
        crop.resize((crop.width * 3, crop.height * 3)).save(buffer, "JPEG", quality=95)
        response = client.post(
            "/api/identities",
            headers=auth(admin),
            data={"name": f"Person {number}"},
            files=[("photos[]", (f"person{number}.jpg", buffer.getvalue(), "image/jpeg"))],
        )
        assert response.status_code == 201, response.text
    entry = log_of(client, admin, recognize(client, admin, MULTIFACE)["batch_id"])["entries"][0]
    assert [face["person"] for face in entry["faces"]] == [f"Person {n}" for n in range(len(boxes))]
    assert len(entry["people"]) == len(boxes)


# ----- per-face export ---------------------------------------------------------------------------------------
def test_the_per_face_csv_has_one_row_per_face_detected(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    body = recognize(client, admin, KIT_WITH_ROSE, OBAMA_AND_BIDEN, KNN / "test" / "obama1.jpg")
    log = log_of(client, admin, body["batch_id"])
    rows = face_rows(client, admin, body["batch_id"])
    assert len(rows) == sum(e["metadata"]["face_count"] for e in log["entries"])
    assert [(r["Filename"], r["Face"]) for r in rows[:2]] == [("kit_with_rose.jpg", "1"), ("kit_with_rose.jpg", "2")]
    assert [r["Person"] for r in rows[:2]] == ["kit_harington", "rose_leslie"]
    first = log["entries"][0]["faces"][0]
    assert [float(rows[0][c]) for c in ("Left", "Top", "Right", "Bottom")] == pytest.approx(first["box"], abs=0.05)
    assert rows[0]["Match #1 Person"] == "kit_harington"
    assert rows[0]["Corrected"] == "No"


def test_the_spec_export_is_unchanged_by_default_and_an_unknown_rows_value_is_refused(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    body = recognize(client, admin, KIT_WITH_ROSE)
    assert len(spec_rows(client, admin, body["batch_id"])) == 1
    bad = client.get(f"{LOGS}/{body['batch_id']}/export", params={"rows": "people"}, headers=auth(admin))
    assert bad.status_code == 400
    assert bad.json()["success"] is False


# ----- stored crops -----------------------------------------------------------------------------------------
def test_each_face_s_crop_is_kept_and_served_to_its_domain_only(
    client: httpx.Client, enrolled: dict[str, int], admin: str, tokens: Callable[..., str]
) -> None:
    body = recognize(client, admin, KIT_WITH_ROSE)
    face = log_of(client, admin, body["batch_id"])["entries"][0]["faces"][1]
    crop = client.get(face["crop_url"], headers=auth(admin))
    assert crop.status_code == 200
    assert crop.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(crop.content)).size == (112, 112)
    assert client.get(face["crop_url"], headers=auth(tokens("other.org"))).status_code == 404


def test_without_keeping_batch_faces_no_crop_or_embedding_is_stored(
    settings: Settings, tokens: Callable[..., str], sessions: sessionmaker[Session], face_model: FaceModel
) -> None:
    admin = tokens("example.com", "admin")
    with (
        LiveServer(settings.model_copy(update={"keep_batch_faces": False}), model=face_model) as server,
        httpx.Client(base_url=server.url, timeout=120) as client,
    ):
        enroll_knn_train(client, admin)
        body = recognize(client, admin, KIT_WITH_ROSE)
        entry = log_of(client, admin, body["batch_id"])["entries"][0]
    assert [f["person"] for f in entry["faces"]] == ["kit_harington", "rose_leslie"]
    assert all(f["crop_url"] is None for f in entry["faces"])
    with sessions() as session:
        kept = session.scalar(
            select(func.count())
            .select_from(BatchFace)
            .where(BatchFace.crop.is_not(None) | BatchFace.embedding.is_not(None))
        )
    assert kept == 0


def test_deleting_a_batch_deletes_its_faces(
    client: httpx.Client, enrolled: dict[str, int], admin: str, sessions: sessionmaker[Session]
) -> None:
    body = recognize(client, admin, KIT_WITH_ROSE)
    assert client.delete(f"{LOGS}/{body['batch_id']}", headers=auth(admin)).status_code == 200
    with sessions() as session:
        left = session.scalar(select(func.count()).select_from(BatchFace).where(BatchFace.batch_id == body["batch_id"]))
    assert left == 0


# ----- appearances and the person filter ------------------------------------------------------------------------
def test_a_person_s_appearances_include_photos_where_they_are_not_the_largest_face(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    older = recognize(client, admin, KNN / "test" / "obama1.jpg")["batch_id"]
    newer = recognize(client, admin, KIT_WITH_ROSE, OBAMA_AND_BIDEN)["batch_id"]
    rose = client.get(f"/api/identities/{enrolled['rose_leslie']}/appearances", headers=auth(admin)).json()
    assert rose["total"] == 1
    [seen] = rose["appearances"]
    assert (seen["batch_id"], seen["filename"], seen["face"]) == (newer, "kit_with_rose.jpg", 1)
    assert seen["confidence"] > 70
    assert client.get(seen["crop_url"], headers=auth(admin)).status_code == 200
    obama = client.get(f"/api/identities/{enrolled['obama']}/appearances", headers=auth(admin)).json()
    assert [a["batch_id"] for a in obama["appearances"]] == [newer, older]  # newest first


def test_batches_can_be_listed_for_one_person_by_id_or_name(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    with_rose = recognize(client, admin, KIT_WITH_ROSE)["batch_id"]
    recognize(client, admin, KNN / "test" / "obama1.jpg")
    for person in (str(enrolled["rose_leslie"]), "rose_leslie", "ROSE_LESLIE"):
        page = client.get(LOGS, params={"person": person}, headers=auth(admin)).json()
        assert [b["batch_id"] for b in page["batches"]] == [with_rose], person
        assert page["total"] == 1
    assert client.get(LOGS, params={"person": "nobody"}, headers=auth(admin)).json()["total"] == 0


def test_another_domain_sees_no_appearances_and_no_batches_for_a_person(
    client: httpx.Client, enrolled: dict[str, int], admin: str, tokens: Callable[..., str]
) -> None:
    recognize(client, admin, KIT_WITH_ROSE)
    other = tokens("other.org", "admin")
    rose = enrolled["rose_leslie"]
    assert client.get(f"/api/identities/{rose}/appearances", headers=auth(other)).status_code == 404
    assert client.get(LOGS, params={"person": str(rose)}, headers=auth(other)).json()["total"] == 0


# ----- corrections --------------------------------------------------------------------------------------------
def test_marking_a_face_unknown_updates_the_entry_the_summary_and_the_face_csv(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    batch_id = recognize(client, admin, KIT_WITH_ROSE)["batch_id"]
    response = correct(client, admin, batch_id, 0, 1, identity_id=None)
    assert response.status_code == 200, response.text
    entry = response.json()
    assert entry["faces"][1]["person"] == "Unknown"
    assert entry["faces"][1]["corrected"] is True
    assert [p["person"] for p in entry["people"]] == ["kit_harington"]
    log = log_of(client, admin, batch_id)
    assert log["summary"]["persons_list"] == ["kit_harington"]
    rows = face_rows(client, admin, batch_id)
    assert (rows[1]["Person"], rows[1]["Confidence (%)"], rows[1]["Corrected"]) == ("Unknown", "", "Yes")


def test_assigning_the_largest_face_to_another_person_changes_the_spec_result_and_csv(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    body = recognize(client, admin, KIT_WITH_ROSE)
    batch_id = body["batch_id"]
    entry = correct(client, admin, batch_id, 0, 0, identity_id=enrolled["alex_lacamoire"]).json()
    assert entry["primary_result"]["person"] == "alex_lacamoire"
    assert entry["recognized"] is True
    assert entry["faces"][0]["identity_id"] == enrolled["alex_lacamoire"]
    [row] = spec_rows(client, admin, batch_id)
    assert (row["Recognized"], row["Primary Person"]) == ("Yes", "alex_lacamoire")
    assert row["Primary Confidence (%)"] == (
        "" if entry["primary_result"]["confidence"] is None else f"{entry['primary_result']['confidence']:.1f}"
    )
    summary = log_of(client, admin, batch_id)["summary"]
    assert summary["persons_list"] == ["alex_lacamoire", "rose_leslie"]
    assert summary["recognized_count"] == 1


def test_marking_the_largest_face_unknown_makes_the_photo_unrecognised(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    batch_id = recognize(client, admin, KNN / "test" / "obama1.jpg")["batch_id"]
    entry = correct(client, admin, batch_id, 0, 0, identity_id=None).json()
    assert (entry["recognized"], entry["primary_result"]) == (False, {"person": "Unknown", "confidence": None})
    summary = log_of(client, admin, batch_id)["summary"]
    assert (summary["recognized_count"], summary["persons_list"], summary["avg_confidence"]) == (0, [], 0.0)


def test_a_correction_is_recorded_with_who_made_it_and_what_it_was(
    client: httpx.Client, enrolled: dict[str, int], admin: str, sessions: sessionmaker[Session]
) -> None:
    batch_id = recognize(client, admin, KIT_WITH_ROSE)["batch_id"]
    correct(client, admin, batch_id, 0, 1, identity_id=enrolled["obama"])
    with sessions() as session:
        [record] = session.scalars(select(FaceCorrection).where(FaceCorrection.batch_id == batch_id)).all()
    assert (record.old_person, record.new_person, record.new_identity_id) == (
        "rose_leslie",
        "obama",
        enrolled["obama"],
    )
    assert record.token_id is not None
    assert record.corrected_at is not None


def test_a_corrected_face_can_join_the_person_s_gallery_without_a_new_upload(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    batch_id = recognize(client, admin, KIT_WITH_ROSE)["batch_id"]
    before = client.get(f"/api/identities/{enrolled['rose_leslie']}", headers=auth(admin)).json()["identity"]
    response = correct(client, admin, batch_id, 0, 1, identity_id=enrolled["rose_leslie"], add_to_gallery=True)
    assert response.status_code == 200, response.text
    after = client.get(f"/api/identities/{enrolled['rose_leslie']}", headers=auth(admin)).json()["identity"]
    assert after["face_count"] == before["face_count"] + 1
    assert after["faces"][-1]["filename"] == "kit_with_rose.jpg"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("0/faces/5", {"identity_id": None}, 404),  # no such face
        ("7/faces/0", {"identity_id": None}, 404),  # no such entry
        ("0/faces/0", {"identity_id": 999_999}, 404),  # no such person
        ("0/faces/0", {"person": "x"}, 400),  # not the documented body
        ("0/faces/0", {"identity_id": None, "add_to_gallery": True}, 400),  # nobody to add the face to
    ],
)
def test_a_correction_that_cannot_apply_says_why(
    client: httpx.Client, enrolled: dict[str, int], admin: str, path: str, body: dict[str, Any], status: int
) -> None:
    batch_id = recognize(client, admin, KIT_WITH_ROSE)["batch_id"]
    response = client.patch(f"{LOGS}/{batch_id}/entries/{path}", headers=auth(admin), json=body)
    assert response.status_code == status, response.text
    assert response.json()["success"] is False


def test_only_admins_correct_and_only_in_their_domain(
    client: httpx.Client, enrolled: dict[str, int], admin: str, tokens: Callable[..., str]
) -> None:
    batch_id = recognize(client, admin, KIT_WITH_ROSE)["batch_id"]
    assert correct(client, tokens("example.com", "user"), batch_id, 0, 0, identity_id=None).status_code == 403
    assert correct(client, tokens("other.org", "admin"), batch_id, 0, 0, identity_id=None).status_code == 404


# ----- quality ------------------------------------------------------------------------------------------------
def test_a_blurred_face_is_reported_with_its_quality_and_never_recognised_on_a_lucky_match(
    client: httpx.Client, enrolled: dict[str, int], admin: str, face_model: FaceModel
) -> None:
    limits = Settings().recognition_quality
    photo = Image.open(KNN / "test" / "obama1.jpg").convert("RGB")
    blurred = None
    for radius in (4, 6, 8, 10, 12, 16):  # the least blur that makes the face too blurred to trust, still found
        buffer = io.BytesIO()
        photo.filter(ImageFilter.GaussianBlur(radius)).save(buffer, "JPEG", quality=95)
        image = decode_image(buffer.getvalue(), max_pixels=80_000_000, min_side=face_model.det_size)
        faces = face_model.detect(image)
        if faces and BLURRY in assess(faces[0], limits).issues:
            blurred = buffer.getvalue()
            break
    assert blurred is not None
    response = client.post(
        "/api/batch-photos/recognize", headers=auth(admin), files=[("photos[]", ("blurred.jpg", blurred, "image/jpeg"))]
    )
    [entry] = log_of(client, admin, response.json()["batch_id"])["entries"]
    face = entry["faces"][0]
    assert face["matches"][0]["person"] == "obama"  # the match alone would have named him
    assert BLURRY in face["quality"]["issues"]
    assert (face["person"], entry["recognized"], entry["people"]) == ("Unknown", False, [])


def test_every_face_reports_its_quality_measures(client: httpx.Client, enrolled: dict[str, int], admin: str) -> None:
    [entry] = log_of(client, admin, recognize(client, admin, KIT_WITH_ROSE)["batch_id"])["entries"]
    for face in entry["faces"]:
        assert set(face["quality"]) == {"eye_distance", "det_score", "sharpness", "yaw", "pitch", "issues"}
        assert face["quality"]["issues"] == []
        assert face["quality"]["eye_distance"] > 8


def test_a_face_added_to_the_gallery_keeps_the_confidence_it_had_before_it_matched_itself(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    batch_id = recognize(client, admin, KIT_WITH_ROSE)["batch_id"]
    face = log_of(client, admin, batch_id)["entries"][0]["faces"][1]
    matched = {m["identity_id"] for m in face["matches"]}
    stranger = next(identity for identity in enrolled.values() if identity not in matched)
    entry = correct(client, admin, batch_id, 0, 1, identity_id=stranger, add_to_gallery=True).json()
    # Its similarity to the person's gallery as it was, not to the copy of itself just added.
    assert entry["faces"][1]["confidence"] < 50
