"""The audit trail (#21): each admin action of a scripted session in order, failed attempts too, own domain
only, and the command line's actions — real server, models and database."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

from service.cli import main
from tests.conftest import KNN, auth, photo_files

TRAIN = KNN / "train"


def trail(client: httpx.Client, token: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/audit", headers=auth(token), params=params)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_each_admin_action_of_a_session_is_listed_in_order_with_who_and_which_ids(
    client: httpx.Client, tokens: Callable[..., str]
) -> None:
    admin = tokens("example.com", "admin", "alice")
    user = tokens("example.com", "user", "bob")
    enrolled = client.post(
        "/api/identities", headers=auth(admin), data={"name": "Obama"}, files=photo_files(TRAIN / "obama" / "obama.jpg")
    ).json()
    person = enrolled["identity"]["id"]
    added = client.post(
        f"/api/identities/{person}/photos", headers=auth(admin), files=photo_files(TRAIN / "obama" / "obama2.jpg")
    ).json()
    client.patch(f"/api/identities/{person}", headers=auth(admin), json={"name": "Barack Obama"})
    client.post(
        "/api/identities", headers=auth(user), data={"name": "X"}, files=photo_files(TRAIN / "biden" / "biden.jpg")
    )
    client.post(  # refused: the name is taken (in another case)
        "/api/identities",
        headers=auth(admin),
        data={"name": "barack obama"},
        files=photo_files(TRAIN / "biden" / "biden.jpg"),
    )
    batch = client.post(
        "/api/batch-photos/recognize", headers=auth(admin), files=photo_files(KNN / "test" / "obama1.jpg")
    ).json()
    client.patch(
        f"/api/batch-photos/logs/{batch['batch_id']}/entries/0/faces/0", headers=auth(admin), json={"identity_id": None}
    )
    client.delete(f"/api/identities/{person}/faces/{added['enrolled'][0]['face_id']}", headers=auth(admin))
    client.delete(f"/api/identities/{person}", headers=auth(admin), params={"erase": "true"})

    events = trail(client, admin)
    assert [(e["action"], e["status"]) for e in events] == [
        ("enroll", 201),
        ("add photos", 201),
        ("rename", 200),
        ("enroll", 403),  # a user token's attempt
        ("enroll", 409),
        ("correct face", 200),
        ("delete face", 200),
        ("delete person", 200),
    ]
    assert [e["actor"] for e in events] == ["alice"] * 3 + ["bob"] + ["alice"] * 4
    assert events[0]["details"]["created"]["identity_id"] == person
    assert events[1]["target"] == f"identity {person}"
    assert events[1]["details"]["created"]["face_ids"] == [added["enrolled"][0]["face_id"]]
    assert events[5]["target"] == f"batch {batch['batch_id']} entry_index 0 face_index 0"
    assert events[7]["details"]["query"] == "erase=true"
    ats = [e["at"] for e in events]
    assert ats == sorted(ats)


def test_an_enrollment_records_the_name_and_photo_files_it_was_sent_even_when_refused(
    client: httpx.Client, admin: str
) -> None:
    photo = TRAIN / "obama" / "obama.jpg"
    for name in ("Obama", "OBAMA"):  # the second is refused: the name is taken
        client.post("/api/identities", headers=auth(admin), data={"name": name}, files=photo_files(photo))
    enrolled, refused = trail(client, admin)
    assert (enrolled["details"]["name"], enrolled["details"]["photos"]) == ("Obama", [photo.name])
    assert (refused["status"], refused["details"]["name"]) == (409, "OBAMA")
    assert "force" not in enrolled["details"]


def test_an_enrollment_refused_for_a_malformed_field_still_records_what_it_tried(
    client: httpx.Client, admin: str
) -> None:
    response = client.post(
        "/api/identities",
        headers=auth(admin),
        data={"name": "N" * 1000, "force": "maybe"},
        files=photo_files(TRAIN / "obama" / "obama.jpg"),
    )
    assert response.status_code == 400
    [event] = trail(client, admin)
    assert (event["status"], event["details"]["force"], event["details"]["photos"]) == (400, "maybe", ["obama.jpg"])
    assert event["details"]["name"] == "N" * 255  # cut, as the file names are


def test_a_rename_records_the_new_name(client: httpx.Client, admin: str) -> None:
    person = client.post(
        "/api/identities", headers=auth(admin), data={"name": "Obama"}, files=photo_files(TRAIN / "obama" / "obama.jpg")
    ).json()["identity"]["id"]
    client.patch(f"/api/identities/{person}", headers=auth(admin), json={"name": "Barack Obama"})
    assert trail(client, admin)[-1]["details"]["name"] == "Barack Obama"


def test_a_correction_records_who_the_face_was_said_to_be(client: httpx.Client, admin: str) -> None:
    batch = client.post(
        "/api/batch-photos/recognize", headers=auth(admin), files=photo_files(KNN / "test" / "obama1.jpg")
    ).json()
    person = client.post(
        "/api/identities", headers=auth(admin), data={"name": "Obama"}, files=photo_files(TRAIN / "obama" / "obama.jpg")
    ).json()["identity"]["id"]
    path = f"/api/batch-photos/logs/{batch['batch_id']}/entries/0/faces/0"
    assert client.patch(path, headers=auth(admin), json={"identity_id": person}).status_code == 200
    assert trail(client, admin)[-1]["details"]["corrected_to"] == person
    assert client.patch(path, headers=auth(admin), json={"identity_id": None}).status_code == 200
    assert trail(client, admin)[-1]["details"]["corrected_to"] == "Unknown"


def test_dismissing_and_restoring_faces_record_which_faces(client: httpx.Client, admin: str) -> None:
    batch = client.post(
        "/api/batch-photos/recognize", headers=auth(admin), files=photo_files(KNN / "test" / "obama1.jpg")
    ).json()
    clusters = client.get(f"/api/batch-photos/logs/{batch['batch_id']}/unknown-faces", headers=auth(admin)).json()
    face_ids = [clusters["clusters"][0]["faces"][0]["face_id"]]
    for action in ("dismiss", "restore"):
        client.post(f"/api/unknown-faces/{action}", headers=auth(admin), json={"face_ids": face_ids})
    events = trail(client, admin)
    assert [(e["action"], e["details"]["face_ids"]) for e in events] == [
        ("dismiss faces", face_ids),
        ("restore faces", face_ids),
    ]


def test_a_user_token_cannot_read_the_trail_and_another_domain_sees_none_of_it(
    client: httpx.Client, admin: str, tokens: Callable[..., str]
) -> None:
    client.post(
        "/api/identities", headers=auth(admin), data={"name": "Obama"}, files=photo_files(TRAIN / "obama" / "obama.jpg")
    )
    assert client.get("/api/audit", headers=auth(tokens("example.com", "user"))).status_code == 403
    assert trail(client, tokens("other.org", "admin")) == []
    assert len(trail(client, admin)) == 1


def test_command_line_actions_are_in_the_trail(facerec_env: dict[str, str]) -> None:
    runner = CliRunner()
    created = runner.invoke(main, ["token", "create", "--domain", "example.com", "--admin"], env=facerec_env)
    token_id = next(word for word in created.output.split() if word.isdigit())
    runner.invoke(main, ["token", "revoke", token_id], env=facerec_env)
    runner.invoke(main, ["batches", "prune", "--older-than", "30", "--domain", "example.com"], env=facerec_env)
    output = runner.invoke(main, ["audit", "--domain", "example.com"], env=facerec_env).output
    lines = output.splitlines()
    assert [line.split()[4:6] for line in lines[:3]] == [["create", "token"], ["revoke", "token"], ["prune", "batches"]]
    assert all(" cli " in line and line.endswith("ok") for line in lines[:3])
    assert lines[-1] == "3 events"


def test_a_command_line_enrollment_records_the_person_and_their_photo_files(
    facerec_env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "Barack Obama"
    folder.mkdir()
    shutil.copy(TRAIN / "obama" / "obama.jpg", folder / "obama.jpg")
    runner = CliRunner()
    enrolled = runner.invoke(main, ["enroll", str(tmp_path), "--domain", "example.com"], env=facerec_env)
    assert enrolled.exit_code == 0, enrolled.output
    output = runner.invoke(main, ["audit", "--domain", "example.com", "--json"], env=facerec_env).output
    [event] = [json.loads(line) for line in output.splitlines()]
    assert (event["action"], event["actor"], event["status"]) == ("enroll", "cli", 0)
    assert (event["details"]["name"], event["details"]["photos"]) == ("Barack Obama", ["obama.jpg"])
