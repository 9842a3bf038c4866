"""A server loads no domain's index at start: each loads on its first use; shutdown saves what changed.

The app runs in process: its lifespan (start and shutdown) is the subject, not HTTP."""

from __future__ import annotations

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from service.gallery import enrollment
from service.gallery.enrollment import PreparedFace
from service.gallery.gallery import Gallery
from service.recognition.faces import FaceModel
from service.search.store import IndexStore
from service.settings import Settings
from tests.conftest import KNN, app_client, auth, photo_files

HEALTH = "/api/batch-photos/health"


def face(seed: int) -> PreparedFace:
    vector = np.random.default_rng(seed).standard_normal(512).astype(np.float32)
    return PreparedFace(f"{seed}.jpg", vector / np.linalg.norm(vector), 0.9, f"{seed:064d}", b"", None)


def test_a_server_starts_with_no_index_loaded_and_loads_a_domain_on_its_first_search(
    settings: Settings, face_model: FaceModel, sessions: sessionmaker[Session], admin: str
) -> None:
    offline = Gallery(sessions, IndexStore(settings.index_dir, 512, "buffalo_s"))
    for domain in ("example.com", "other.test", "third.test"):
        enrollment.enroll(offline, domain, [face(len(domain))], [], model_name="buffalo_s", name="Ann")

    with app_client(settings, face_model) as client:
        body = client.get(HEALTH).json()
        assert (body["status"], body["indexed_domains"]) == ("healthy", 0)
        response = client.post(
            "/api/batch-photos/recognize",
            headers=auth(admin),
            files=photo_files(KNN / "test" / "obama1.jpg"),
        )
        assert response.status_code == 200, response.text
        body = client.get(HEALTH).json()
        assert (body["status"], body["indexed_domains"], body["indexed_faces"]) == ("healthy", 1, 1)


def test_stopping_the_server_saves_the_indexes_changed_since_their_last_snapshot(
    settings: Settings, face_model: FaceModel, sessions: sessionmaker[Session], admin: str
) -> None:
    offline = Gallery(sessions, IndexStore(settings.index_dir, 512, "buffalo_s"))
    enrollment.enroll(offline, "example.com", [face(1)], [], model_name="buffalo_s", name="Ann")  # file at 1
    quiet = settings.model_copy(update={"index_snapshot_changes": 1000, "index_snapshot_idle_seconds": 3600})
    with app_client(quiet, face_model) as client:
        created = client.post(
            "/api/identities",
            headers=auth(admin),
            data={"name": "obama"},
            files=photo_files(*sorted((KNN / "train" / "obama").iterdir())),
        )
        assert created.status_code == 201, created.text
        store: IndexStore = client.app.state.services.gallery.store
        assert store.unsaved_domains() == ["example.com"]
        assert store.file_version("example.com") == 1
    assert store.unsaved_domains() == []
    assert store.file_version("example.com") == 2
