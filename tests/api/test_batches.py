"""The six batch endpoints behave exactly as the spec documents, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from PIL import Image

from service.recognition.faces import FaceModel
from service.settings import Settings
from tests.api.spec_client import load_spec_client
from tests.api.spec_csv import spec_csv_header
from tests.api.spec_shapes import check_entry, check_recognize_response, check_summary
from tests.conftest import (
    FACES,
    KNN,
    STRANGERS,
    LiveServer,
    app_client,
    auth,
    enroll_knn_train,
    photo_files,
    worker_held,
)

TEST_PHOTOS = sorted((KNN / "test").iterdir())
EXPECTED = {
    "alex_lacamoire1.jpg": "alex_lacamoire",
    "johnsnow_test1.jpg": "kit_harington",
    "kit_with_rose.jpg": "kit_harington",
    "obama1.jpg": "obama",
    "obama_and_biden.jpg": "obama",
}


@pytest.fixture
def enrolled(client: httpx.Client, admin: str) -> dict[str, int]:
    return enroll_knn_train(client, admin)


def recognize(client: httpx.Client, token: str, *paths: Path, **data: str) -> httpx.Response:
    return client.post("/api/batch-photos/recognize", headers=auth(token), files=photo_files(*paths), data=data)


def no_face_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (90, 140, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def test_the_spec_python_client_works_unchanged(
    live_server: LiveServer, enrolled: dict[str, int], admin: str, tmp_path: Path, client: httpx.Client
) -> None:
    spec = load_spec_client(live_server.url)
    result = spec.batch_recognize_photos(str(KNN / "test"), admin)
    check_recognize_response(result)
    assert result["total_uploaded"] == result["total_processed"] == 5
    assert result["summary"]["recognized_count"] == 5
    assert result["summary"]["recognition_rate"] == 100.0
    # Everyone recognised on any face (#16): Biden and Rose Leslie are the second faces of group photos.
    assert set(result["summary"]["persons_list"]) == {
        "alex_lacamoire",
        "kit_harington",
        "obama",
        "biden",
        "rose_leslie",
    }

    out = tmp_path / "batch_results.csv"
    spec.download_batch_csv(result["batch_id"], admin, str(out))
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert {row["Filename"]: row["Primary Person"] for row in rows} == EXPECTED

    log = client.get(result["log_url"], headers=auth(admin)).json()
    assert log["success"] is True
    assert log["batch_id"] == result["batch_id"]
    assert log["total_photos"] == 5
    assert log["summary"] == result["summary"]
    for entry in log["entries"]:
        check_entry(entry, result["batch_id"], "example.com")
        assert entry["primary_result"]["person"] == EXPECTED[entry["filename"]]


def test_an_entry_reports_the_primary_face_and_every_face_as_extra_detail(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    body = recognize(client, admin, KNN / "test" / "obama_and_biden.jpg").json()
    entry = client.get(body["log_url"], headers=auth(admin)).json()["entries"][0]
    assert entry["metadata"] == {
        "face_count": 3,
        "processing_time_ms": entry["metadata"]["processing_time_ms"],
        "has_multiple_faces": True,
        "detection": "640",  # #20: which detection passes the photo took
    }
    assert next(m["person"] for m in entry["top_3_matches"]) == "obama"
    assert len(entry["faces"]) == 3
    assert {face["matches"][0]["person"] for face in entry["faces"][:2]} == {"obama", "biden"}
    assert entry["faces"][0]["matches"] == entry["top_3_matches"]


def test_a_photo_without_faces_is_unknown_with_no_matches(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    files = [("photos[]", ("sky.png", no_face_png(), "image/png"))]
    body = client.post("/api/batch-photos/recognize", headers=auth(admin), files=files).json()
    entry = client.get(body["log_url"], headers=auth(admin)).json()["entries"][0]
    assert entry["recognized"] is False
    assert entry["primary_result"] == {"person": "Unknown", "confidence": None}
    assert entry["top_3_matches"] == []
    assert entry["metadata"]["face_count"] == 0
    assert body["summary"]["avg_confidence"] == 0.0


def test_strangers_come_out_unknown_but_still_list_their_nearest_people(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    body = recognize(client, admin, *STRANGERS).json()
    assert body["summary"]["recognized_count"] == 0
    log = client.get(body["log_url"], headers=auth(admin)).json()
    for entry in log["entries"]:
        assert entry["primary_result"]["person"] == "Unknown"
        assert len(entry["top_3_matches"]) == 3


def test_summary_math_follows_the_contract(client: httpx.Client, enrolled: dict[str, int], admin: str) -> None:
    photos = [
        KNN / "test" / "obama1.jpg",
        STRANGERS[0],
        KNN / "test" / "kit_with_rose.jpg",
        KNN / "test" / "obama1.jpg",
    ]
    body = recognize(client, admin, *photos).json()
    summary = body["summary"]
    check_summary(summary)
    log = client.get(body["log_url"], headers=auth(admin)).json()
    confidences = [e["primary_result"]["confidence"] for e in log["entries"] if e["recognized"]]
    assert summary["recognized_count"] == 3
    assert summary["recognition_rate"] == 75.0
    # Everyone recognised on any face, in order of first appearance (#16); the counts follow the largest face.
    assert summary["persons_list"] == ["obama", "kit_harington", "rose_leslie"]
    assert summary["unique_persons"] == 3
    assert summary["avg_confidence"] == round(sum(confidences) / 3, 1)


def test_the_threshold_field_decides_what_counts_as_recognised(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    assert recognize(client, admin, STRANGERS[0], threshold="0").json()["summary"]["recognized_count"] == 1
    assert (
        recognize(client, admin, KNN / "test" / "obama1.jpg", threshold="100").json()["summary"]["recognized_count"]
        == 0
    )


@pytest.mark.parametrize("value", ["-1", "100.5", "abc", "nan", "inf"])
def test_a_bad_threshold_is_a_400(client: httpx.Client, admin: str, value: str) -> None:
    response = recognize(client, admin, KNN / "test" / "obama1.jpg", threshold=value)
    assert response.status_code == 400
    assert "threshold" in response.json()["error"]


def test_no_photos_is_a_400_saying_so(client: httpx.Client, admin: str) -> None:
    response = client.post(
        "/api/batch-photos/recognize", headers=auth(admin), files=[("other", ("a.jpg", b"x", "image/jpeg"))]
    )
    assert response.status_code == 400
    assert response.json() == {"success": False, "error": "No photos uploaded: send files in the photos[] form field"}


@pytest.mark.parametrize(
    "body",
    [{"json": {"photos": []}}, {"data": {"photos[]": "a.jpg"}}, {"content": b""}],
    ids=["json", "urlencoded", "empty"],
)
def test_a_body_without_files_is_the_specs_400_no_photos_uploaded(
    client: httpx.Client, admin: str, body: dict[str, object]
) -> None:
    response = client.post("/api/batch-photos/recognize", headers=auth(admin), **body)  # type: ignore[arg-type]
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert response.json()["error"].startswith("No photos uploaded")


def test_more_photos_than_the_limit_is_a_400_naming_the_limit(
    settings: Settings, face_model: FaceModel, tokens: Callable[..., str]
) -> None:
    small = settings.model_copy(update={"max_batch_size": 3})
    with app_client(small, face_model) as http:
        response = recognize(http, tokens(), *([KNN / "test" / "obama1.jpg"] * 4))
    assert response.status_code == 400
    assert response.json()["error"] == "Batch size exceeds maximum of 3 photos (4 uploaded)"


def test_unusable_files_are_listed_and_the_good_ones_kept(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    files = [
        *photo_files(KNN / "test" / "obama1.jpg"),
        ("photos[]", ("notes.jpg", b"just some text", "image/jpeg")),
        ("photos[]", ("empty.png", b"", "image/png")),
    ]
    body = client.post("/api/batch-photos/recognize", headers=auth(admin), files=files).json()
    assert body["total_uploaded"] == 3
    assert body["total_processed"] == 1
    assert {e["filename"]: e["error"] for e in body["errors"]} == {
        "notes.jpg": "Unsupported or unrecognised image format (supported: JPEG, PNG, GIF, BMP, TIFF, WebP, AVIF)",
        "empty.png": "File is empty",
    }
    log = client.get(body["log_url"], headers=auth(admin)).json()
    assert [e["filename"] for e in log["entries"]] == ["obama1.jpg"]
    assert log["errors"] == body["errors"]


def test_text_values_in_photos_are_counted_and_listed_as_errors(client: httpx.Client, admin: str) -> None:
    body = client.post(
        "/api/batch-photos/recognize",
        headers=auth(admin),
        files=photo_files(KNN / "test" / "obama1.jpg"),
        data={"photos[]": "not a file"},
    ).json()
    assert (body["total_uploaded"], body["total_processed"]) == (2, 1)
    assert body["errors"] == [{"filename": "(not a file)", "error": "A photos[] value was text, not a file upload"}]


def test_a_batch_with_no_usable_file_is_a_400_with_the_errors_and_is_not_stored(
    client: httpx.Client, admin: str
) -> None:
    files = [("photos[]", ("a.jpg", b"nope", "image/jpeg")), ("photos[]", ("b.jpg", b"", "image/jpeg"))]
    response = client.post("/api/batch-photos/recognize", headers=auth(admin), files=files)
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert [e["filename"] for e in body["errors"]] == ["a.jpg", "b.jpg"]
    assert client.get("/api/batch-photos/logs", headers=auth(admin)).json()["total"] == 0


def test_files_over_the_size_limit_are_refused_per_file(
    settings: Settings, face_model: FaceModel, tokens: Callable[..., str]
) -> None:
    tight = settings.model_copy(update={"max_file_mb": 0.1})
    big = FACES / "facenet_pytorch" / "data" / "test_images" / "shea_whigham" / "1.jpg"
    with app_client(tight, face_model) as http:
        body = recognize(http, tokens(), KNN / "test" / "obama1.jpg", big).json()
    assert body["total_processed"] == 1
    assert body["errors"][0]["filename"] == "1.jpg"
    assert body["errors"][0]["error"].startswith("File is too large: 2.6 MB; the limit is 0.1 MB")


def test_file_names_lose_any_path_parts(client: httpx.Client, admin: str) -> None:
    data = (KNN / "test" / "obama1.jpg").read_bytes()
    files = [
        ("photos[]", ("../../etc/x.jpg", data, "image/jpeg")),
        ("photos[]", ("C:\\temp\\y.jpg", data, "image/jpeg")),
    ]
    body = client.post("/api/batch-photos/recognize", headers=auth(admin), files=files).json()
    log = client.get(body["log_url"], headers=auth(admin)).json()
    assert [e["filename"] for e in log["entries"]] == ["x.jpg", "y.jpg"]


def test_the_csv_has_the_spec_columns_and_equals_the_json_log(
    client: httpx.Client, enrolled: dict[str, int], admin: str
) -> None:
    body = recognize(client, admin, *TEST_PHOTOS, STRANGERS[0]).json()
    response = client.get(f"/api/batch-photos/logs/{body['batch_id']}/export", headers=auth(admin))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == f'attachment; filename="batch_{body["batch_id"]}.csv"'
    reader = csv.reader(io.StringIO(response.text))
    assert next(reader) == spec_csv_header()
    rows = list(reader)
    log = client.get(body["log_url"], headers=auth(admin)).json()
    assert len(rows) == len(log["entries"]) == 6
    for row, entry in zip(rows, log["entries"], strict=True):
        matches = entry["top_3_matches"] + [None] * (3 - len(entry["top_3_matches"]))
        expected = [
            entry["timestamp"],
            entry["filename"],
            entry["domain"],
            "Yes" if entry["recognized"] else "No",
            entry["primary_result"]["person"],
            "" if entry["primary_result"]["confidence"] is None else f"{entry['primary_result']['confidence']:.1f}",
        ]
        for match in matches:
            expected += ["", ""] if match is None else [match["person"], f"{match['confidence']:.1f}"]
        expected += [str(entry["metadata"]["face_count"]), str(entry["metadata"]["processing_time_ms"])]
        assert row == expected
    assert rows[-1][3:6] == ["No", "Unknown", ""]


def test_csv_cells_that_look_like_formulas_are_neutralised(client: httpx.Client, admin: str) -> None:
    data = (KNN / "test" / "obama1.jpg").read_bytes()
    files = [
        ("photos[]", ('=HYPERLINK("evil.example","y").jpg', data, "image/jpeg")),
        ("photos[]", ("+1.jpg", data, "image/jpeg")),
    ]
    body = client.post("/api/batch-photos/recognize", headers=auth(admin), files=files).json()
    text = client.get(f"/api/batch-photos/logs/{body['batch_id']}/export", headers=auth(admin)).text
    filenames = [row[1] for row in list(csv.reader(io.StringIO(text)))[1:]]
    assert filenames == ['\'=HYPERLINK("evil.example","y").jpg', "'+1.jpg"]


def test_the_list_is_newest_first_with_limit_offset_and_a_total(client: httpx.Client, admin: str) -> None:
    ids = []
    for _ in range(3):
        ids.append(recognize(client, admin, KNN / "test" / "obama1.jpg").json()["batch_id"])
        time.sleep(0.01)
    page = client.get("/api/batch-photos/logs?limit=2", headers=auth(admin)).json()
    assert page["success"] is True
    assert page["total"] == 3
    assert [b["batch_id"] for b in page["batches"]] == ids[::-1][:2]
    rest = client.get("/api/batch-photos/logs?limit=2&offset=2", headers=auth(admin)).json()
    assert [b["batch_id"] for b in rest["batches"]] == ids[:1]
    item = page["batches"][0]
    assert set(item) >= {"batch_id", "total_photos", "summary", "created_at"}
    check_summary(item["summary"])


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=ten", "offset=-1"])
def test_bad_list_parameters_are_400(client: httpx.Client, admin: str, query: str) -> None:
    response = client.get(f"/api/batch-photos/logs?{query}", headers=auth(admin))
    assert response.status_code == 400
    assert response.json()["success"] is False


def test_delete_removes_the_batch_and_then_it_is_404(client: httpx.Client, admin: str) -> None:
    batch_id = recognize(client, admin, KNN / "test" / "obama1.jpg").json()["batch_id"]
    response = client.delete(f"/api/batch-photos/logs/{batch_id}", headers=auth(admin))
    assert response.status_code == 200
    assert response.json() == {"success": True, "message": f"Batch {batch_id} deleted successfully"}
    for path in (f"/api/batch-photos/logs/{batch_id}", f"/api/batch-photos/logs/{batch_id}/export"):
        missing = client.get(path, headers=auth(admin))
        assert missing.status_code == 404
        assert missing.json()["success"] is False
    assert client.delete(f"/api/batch-photos/logs/{batch_id}", headers=auth(admin)).status_code == 404


def test_unknown_batch_ids_are_404(client: httpx.Client, admin: str) -> None:
    for batch_id in ("20231215_143022_1234", "not-a-batch", "x" * 300):
        response = client.get(f"/api/batch-photos/logs/{batch_id}", headers=auth(admin))
        assert response.status_code == 404
        assert response.json()["success"] is False


def test_another_domains_batch_is_invisible(client: httpx.Client, tokens: Callable[..., str]) -> None:
    mine, theirs = tokens("a.example", "user"), tokens("b.example", "admin")
    batch_id = recognize(client, mine, KNN / "test" / "obama1.jpg").json()["batch_id"]
    for method, path in (
        ("GET", f"/api/batch-photos/logs/{batch_id}"),
        ("GET", f"/api/batch-photos/logs/{batch_id}/export"),
        ("DELETE", f"/api/batch-photos/logs/{batch_id}"),
    ):
        assert client.request(method, path, headers=auth(theirs)).status_code == 404
    assert client.get("/api/batch-photos/logs", headers=auth(theirs)).json()["total"] == 0
    entry = client.get(f"/api/batch-photos/logs/{batch_id}", headers=auth(mine)).json()["entries"][0]
    assert entry["domain"] == "a.example"


def test_a_domain_only_searches_its_own_people(client: httpx.Client, tokens: Callable[..., str]) -> None:
    enroll_knn_train(client, tokens("a.example", "admin"))
    body = recognize(client, tokens("b.example", "user"), KNN / "test" / "obama1.jpg").json()
    log = client.get(body["log_url"], headers=auth(tokens("b.example", "user"))).json()
    assert log["entries"][0]["top_3_matches"] == []
    assert body["summary"]["recognized_count"] == 0


def test_a_busy_server_answers_503_with_retry_after_and_serves_again_once_free(
    held_client: httpx.Client, user: str
) -> None:
    refused = recognize(held_client, user, KNN / "test" / "obama1.jpg")
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.json() == {"success": False, "error": "The server is busy; retry later"}


def test_a_server_that_was_busy_serves_the_next_batch(settings: Settings, face_model: FaceModel, user: str) -> None:
    busy = settings.model_copy(update={"inference_workers": 1, "max_queued_batches": 0})
    with app_client(busy, face_model) as http:
        with worker_held(http):
            assert recognize(http, user, KNN / "test" / "obama1.jpg").status_code == 503
        assert recognize(http, user, KNN / "test" / "obama1.jpg").status_code == 200


def test_the_upload_route_takes_a_full_batch_beyond_the_small_body_limit_of_other_routes(
    settings: Settings, face_model: FaceModel, tokens: Callable[..., str]
) -> None:
    small = settings.model_copy(update={"max_batch_size": 3, "max_file_mb": 2.0})
    source = Image.open(FACES / "facenet_pytorch" / "data" / "test_images" / "shea_whigham" / "1.jpg").convert("RGB")
    buffer = io.BytesIO()
    source.resize((1800, 1350)).save(buffer, "JPEG", quality=95)  # about 0.8 MB
    files = [("photos[]", (f"p{i}.jpg", buffer.getvalue(), "image/jpeg")) for i in range(3)]
    assert sum(len(part[1][1]) for part in files) > 2 * 1024 * 1024  # twice the 1 MB limit of the JSON routes
    with app_client(small, face_model) as http:
        response = http.post("/api/batch-photos/recognize", headers=auth(tokens()), files=files)
    assert response.status_code == 200, response.text
    assert response.json()["total_processed"] == 3
