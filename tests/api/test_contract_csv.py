"""The CSV export as the spec documents it (its "CSV Format" table), and safe to open in a spreadsheet: a text
cell that starts like a formula (= + - @) is prefixed with ``'`` in every text column — file names, the
domain, the primary person and the three matches."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import httpx

from tests.api.spec_csv import spec_csv_header
from tests.conftest import KNN, auth, photo_files

TEST_PHOTOS = sorted((KNN / "test").iterdir())
# Every enrolled person has a formula-like name, so every person cell of the CSV is one.
FORMULA_NAMES = {
    "obama": "=Obama",
    "biden": "+Biden",
    "kit_harington": "-Kit",
    "rose_leslie": "@Rose",
    "alex_lacamoire": "=HYPERLINK(Alex)",
}
PERSON_COLUMNS = ("Primary Person", "Match #1 Person", "Match #2 Person", "Match #3 Person")


def export(client: httpx.Client, token: str, batch_id: str) -> list[dict[str, str]]:
    response = client.get(f"/api/batch-photos/logs/{batch_id}/export", headers=auth(token))
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def recognize(client: httpx.Client, token: str, *paths: Any) -> str:
    response = client.post("/api/batch-photos/recognize", headers=auth(token), files=photo_files(*paths))
    assert response.status_code == 200, response.text
    return str(response.json()["batch_id"])


def test_the_spec_csv_table_has_the_14_documented_columns() -> None:
    header = spec_csv_header()
    assert len(header) == 14
    assert (header[0], header[2], header[-1]) == ("Timestamp", "Domain", "Processing Time (ms)")


def test_the_export_header_is_the_specs_header_word_for_word(client: httpx.Client, user: str) -> None:
    batch_id = recognize(client, user, KNN / "test" / "obama1.jpg")
    response = client.get(f"/api/batch-photos/logs/{batch_id}/export", headers=auth(user))
    assert next(csv.reader(io.StringIO(response.text))) == spec_csv_header()


def test_formula_like_file_names_are_neutralised_in_the_filename_column(client: httpx.Client, user: str) -> None:
    data = (KNN / "test" / "obama1.jpg").read_bytes()
    names = ["=1+1.jpg", "+a.jpg", "-a.jpg", "@SUM(A1).jpg"]
    files = [("photos[]", (name, data, "image/jpeg")) for name in names]
    response = client.post("/api/batch-photos/recognize", headers=auth(user), files=files)
    assert response.status_code == 200, response.text
    rows = export(client, user, response.json()["batch_id"])
    assert [row["Filename"] for row in rows] == ["'" + name for name in names]


def test_formula_like_person_names_are_neutralised_in_the_primary_and_all_three_match_columns(
    client: httpx.Client, admin: str
) -> None:
    for folder, name in FORMULA_NAMES.items():
        photos = sorted((KNN / "train" / folder).iterdir())
        response = client.post("/api/identities", headers=auth(admin), data={"name": name}, files=photo_files(*photos))
        assert response.status_code == 201, response.text
    batch_id = recognize(client, admin, *TEST_PHOTOS)
    rows = export(client, admin, batch_id)
    log = client.get(f"/api/batch-photos/logs/{batch_id}", headers=auth(admin)).json()

    assert len(rows) == len(log["entries"]) == len(TEST_PHOTOS)
    for row, entry in zip(rows, log["entries"], strict=True):
        assert entry["recognized"] is True  # every test photo shows an enrolled person
        people = [entry["primary_result"]["person"]] + [m["person"] for m in entry["top_3_matches"]]
        assert len(people) == 4  # five people enrolled: three matches for every photo
        assert [row[column] for column in PERSON_COLUMNS] == ["'" + person for person in people]


def test_a_formula_like_domain_is_neutralised_in_the_domain_column(
    client: httpx.Client, tokens: Callable[..., str]
) -> None:
    for domain in ("=cmd.example", "+x.example", "-x.example", "@x.example"):
        token = tokens(domain, "user")
        rows = export(client, token, recognize(client, token, KNN / "test" / "obama1.jpg"))
        assert [row["Domain"] for row in rows] == ["'" + domain], domain


def test_ordinary_text_is_exported_unchanged(client: httpx.Client, tokens: Callable[..., str]) -> None:
    token = tokens("a-b.example", "user")  # a "-" inside a value is no formula
    rows = export(client, token, recognize(client, token, KNN / "test" / "obama1.jpg"))
    assert [(row["Filename"], row["Domain"], row["Primary Person"]) for row in rows] == [
        ("obama1.jpg", "a-b.example", "Unknown")
    ]
