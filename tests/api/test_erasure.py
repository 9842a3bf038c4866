"""Erasing a person (#21): nothing of theirs is left in SQL or the index; counts stay, names say [erased]."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import numpy as np
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.cli import main
from service.db.models import Batch, BatchEntry, BatchFace, Face, FaceCorrection, Identity
from tests.conftest import KNN, LiveServer, auth, enroll_knn_train, photo_files

KIT_WITH_ROSE = KNN / "test" / "kit_with_rose.jpg"


def everything_named(sessions: sessionmaker[Session], name: str, identity_id: int) -> list[str]:
    """Every place SQL still holds the person's name, id, crops or embeddings."""
    found = []
    with sessions() as session:
        if session.get(Identity, identity_id) is not None:
            found.append("identity")
        if session.scalars(select(Face).where(Face.identity_id == identity_id)).first():
            found.append("gallery faces")
        for face in session.scalars(select(BatchFace)):
            if face.identity_id == identity_id or face.person == name:
                found.append(f"batch face {face.id}")
            if any(m.get("person") == name or m.get("identity_id") == identity_id for m in face.matches):
                found.append(f"matches of batch face {face.id}")
        for entry in session.scalars(select(BatchEntry)):
            columns = (entry.primary_person, entry.match1_person, entry.match2_person, entry.match3_person)
            if name in columns:
                found.append(f"entry {entry.id}")
        for batch in session.scalars(select(Batch)):
            if name in batch.persons_list:
                found.append(f"batch {batch.id}")
        for correction in session.scalars(select(FaceCorrection)):
            if name in (correction.old_person, correction.new_person):
                found.append(f"correction {correction.id}")
    return found


def test_erasing_a_person_leaves_nothing_of_them_and_keeps_the_counts(
    live_server: LiveServer, client: httpx.Client, admin: str, sessions: sessionmaker[Session]
) -> None:
    people = enroll_knn_train(client, admin)
    rose = people["rose_leslie"]
    body = client.post("/api/batch-photos/recognize", headers=auth(admin), files=photo_files(KIT_WITH_ROSE)).json()
    batch_id = body["batch_id"]
    client.patch(
        f"/api/batch-photos/logs/{batch_id}/entries/0/faces/1", headers=auth(admin), json={"identity_id": rose}
    )
    with sessions() as session:
        rose_face = session.scalars(select(BatchFace).where(BatchFace.identity_id == rose)).one()
        vector = np.frombuffer(rose_face.embedding or b"", dtype=np.float32)
    response = client.delete(f"/api/identities/{rose}", params={"erase": "true"}, headers=auth(admin))
    assert response.status_code == 200, response.text
    erased: dict[str, Any] = response.json()["erased"]
    assert (erased["name"], erased["gallery_faces"], erased["batch_faces"], erased["batches"]) == (
        "rose_leslie",
        2,
        1,
        1,
    )
    assert everything_named(sessions, "rose_leslie", rose) == []
    with sessions() as session:
        face = session.get(BatchFace, rose_face.id)
        assert face is not None
        assert (face.crop, face.embedding, face.person) == (None, None, "[erased]")
    # The index no longer returns her for her own face.
    matches = live_server.app.state.services.gallery.search("example.com", vector.reshape(1, -1), k=3)[0]
    assert rose not in [m.identity_id for m in matches]
    log = client.get(f"/api/batch-photos/logs/{batch_id}", headers=auth(admin)).json()
    assert log["summary"]["persons_list"] == ["kit_harington", "[erased]"]
    assert log["summary"]["unique_persons"] == 2  # counts stay
    assert log["entries"][0]["faces"][1]["person"] == "[erased]"
    assert log["entries"][0]["faces"][1]["crop_url"] is None
    rows = list(
        csv.DictReader(io.StringIO(client.get(f"/api/batch-photos/logs/{batch_id}/export", headers=auth(admin)).text))
    )
    assert "rose_leslie" not in str(rows)
    faces_csv = client.get(
        f"/api/batch-photos/logs/{batch_id}/export", params={"rows": "faces"}, headers=auth(admin)
    ).text
    assert "rose_leslie" not in faces_csv
    assert "[erased]" in faces_csv


def test_plain_deletion_keeps_the_batches_as_they_were(
    client: httpx.Client, admin: str, sessions: sessionmaker[Session]
) -> None:
    people = enroll_knn_train(client, admin)
    body = client.post("/api/batch-photos/recognize", headers=auth(admin), files=photo_files(KIT_WITH_ROSE)).json()
    response = client.delete(f"/api/identities/{people['rose_leslie']}", headers=auth(admin))
    assert response.status_code == 200
    assert "erased" not in response.json()
    log = client.get(f"/api/batch-photos/logs/{body['batch_id']}", headers=auth(admin)).json()
    assert log["entries"][0]["faces"][1]["person"] == "rose_leslie"


def test_the_cli_erases_a_person_and_prints_what_went(
    facerec_env: dict[str, str], client: httpx.Client, admin: str, sessions: sessionmaker[Session]
) -> None:
    people = enroll_knn_train(client, admin)
    client.post("/api/batch-photos/recognize", headers=auth(admin), files=photo_files(KIT_WITH_ROSE))
    result = CliRunner().invoke(
        main, ["identities", "erase", str(people["kit_harington"]), "--domain", "example.com", "--yes"], env=facerec_env
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("erased 'kit_harington': 2 gallery faces; in 1 batch: 1 face")
    assert everything_named(sessions, "kit_harington", people["kit_harington"]) == []
