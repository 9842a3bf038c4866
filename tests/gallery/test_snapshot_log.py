"""Each index file saved is recorded in SQL for its index folder, and the change log is pruned below what
every folder's file still needs; a file the log no longer reaches is rebuilt from SQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from service.common.time import utcnow
from service.db.gallery import change_log_size
from service.db.models import GalleryChange, IndexSnapshot
from service.gallery import enrollment
from service.gallery.enrollment import PreparedFace
from service.gallery.gallery import Gallery
from service.search.store import IndexStore, SnapshotPolicy

DOMAIN = "example.com"


def face(seed: int) -> PreparedFace:
    vector = np.random.default_rng(seed).standard_normal(512).astype(np.float32)
    return PreparedFace(f"{seed}.jpg", vector / np.linalg.norm(vector), 0.9, f"{seed:064d}", b"", None)


def enroll(gallery: Gallery, name: str, seed: int) -> enrollment.EnrollmentResult:
    return enrollment.enroll(gallery, DOMAIN, [face(seed)], [], model_name="test", name=name)


def replica(sessions: sessionmaker[Session], folder: Path, policy: SnapshotPolicy | None = None) -> Gallery:
    """A process with its own index folder; the change log keeps no extra recent versions."""
    return Gallery(sessions, IndexStore(folder, 512, "test", policy=policy), keep_versions=0)


def logged_versions(sessions: sessionmaker[Session]) -> list[int]:
    with sessions() as session:
        return sorted(set(session.scalars(select(GalleryChange.version).where(GalleryChange.domain == DOMAIN))))


def snapshots(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        rows = session.execute(
            select(IndexSnapshot.holder, IndexSnapshot.version).where(IndexSnapshot.domain == DOMAIN)
        )
        return {holder: version for holder, version in rows}


def best_name(gallery: Gallery, prepared: PreparedFace) -> str | None:
    hits = gallery.search(DOMAIN, prepared.embedding[None, :], k=1)[0]
    return hits[0].name if hits and hits[0].similarity > 0.99 else None


def test_each_saved_file_is_recorded_for_its_index_folder(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    a = replica(sessions, tmp_path / "a")
    enroll(a, "Ann", 1)
    enroll(a, "Bob", 2)
    assert snapshots(sessions) == {a.store.holder: 2}
    assert (tmp_path / "a" / "holder.id").read_text() == a.store.holder


def test_the_log_is_pruned_below_the_oldest_file_any_folder_holds(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    a, b = replica(sessions, tmp_path / "a"), replica(sessions, tmp_path / "b")
    enroll(a, "Ann", 1)
    assert best_name(b, face(1)) == "Ann"  # b saves its own file at version 1
    enroll(a, "Bob", 2)
    enroll(a, "Cid", 3)
    assert snapshots(sessions) == {a.store.holder: 3, b.store.holder: 1}
    assert logged_versions(sessions) == [2, 3]  # what b's file needs to catch up
    check = Gallery(sessions, IndexStore(tmp_path / "b", 512, "test")).verify(DOMAIN, repair=False)
    assert check.consistent, check.problems
    assert check.behind == 2


def test_recent_versions_stay_in_the_log_for_processes_catching_up_in_memory(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    a = Gallery(sessions, IndexStore(tmp_path / "a", 512, "test"), keep_versions=2)
    for seed in range(1, 6):
        enroll(a, f"P{seed}", seed)
    assert logged_versions(sessions) == [4, 5]


def test_a_folder_silent_beyond_the_retention_no_longer_holds_the_log_back(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    a, b = replica(sessions, tmp_path / "a"), replica(sessions, tmp_path / "b")
    enroll(a, "Ann", 1)
    assert best_name(b, face(1)) == "Ann"
    with sessions.begin() as session:
        session.execute(
            update(IndexSnapshot)
            .where(IndexSnapshot.holder == b.store.holder)
            .values(saved_at=utcnow() - timedelta(days=8))
        )
    enroll(a, "Bob", 2)
    assert snapshots(sessions) == {a.store.holder: 2}
    assert logged_versions(sessions) == []


def test_a_file_the_pruned_log_no_longer_reaches_is_rebuilt_from_sql(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    a, b = replica(sessions, tmp_path / "a"), replica(sessions, tmp_path / "b")
    enroll(a, "Ann", 1)
    assert best_name(b, face(1)) == "Ann"
    with sessions.begin() as session:
        session.execute(update(IndexSnapshot).values(saved_at=utcnow() - timedelta(days=8)))
    enroll(a, "Bob", 2)
    enroll(a, "Cid", 3)
    restarted = replica(sessions, tmp_path / "b")  # b's file is at version 1; versions 2 and 3 are gone
    assert [best_name(restarted, face(s)) for s in (1, 2, 3)] == ["Ann", "Bob", "Cid"]
    assert restarted.store.full_loads == 1
    assert restarted.store.file_version(DOMAIN) == 3


def test_changes_between_snapshots_reach_a_restarted_process_from_the_log(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    policy = SnapshotPolicy(every_changes=1000)
    server = replica(sessions, tmp_path / "index", policy)
    enroll(server, "Ann", 1)  # the first load rebuilds from SQL and saves
    enroll(server, "Bob", 2)
    enroll(server, "Cid", 3)
    assert server.store.file_version(DOMAIN) == 1
    with sessions() as session:
        assert change_log_size(session, DOMAIN) == 2  # versions 2 and 3, which the file lacks

    restarted = replica(sessions, tmp_path / "index", policy)
    assert [best_name(restarted, face(s)) for s in (1, 2, 3)] == ["Ann", "Bob", "Cid"]


def test_closing_saves_what_changed_and_lets_the_log_be_pruned(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    server = replica(sessions, tmp_path / "index", SnapshotPolicy(every_changes=1000, background=True))
    enroll(server, "Ann", 1)
    enroll(server, "Bob", 2)
    server.close()
    assert server.store.file_version(DOMAIN) == 2
    assert logged_versions(sessions) == []


@pytest.mark.parametrize("faces_each", [12])
def test_a_compressed_gallery_answers_with_the_exact_similarities_from_sql(
    sessions: sessionmaker[Session], tmp_path: Path, faces_each: int
) -> None:
    gallery = Gallery(sessions, IndexStore(tmp_path / "index", 512, "test", compress_above=0))
    for person in range(30):
        prepared = [face(1000 * person + n) for n in range(faces_each)]
        enrollment.enroll(gallery, DOMAIN, prepared, [], model_name="test", name=f"P{person}")
    assert gallery.index(DOMAIN).kind == "sq8"
    probe = face(1000 * 7 + 3)
    best = gallery.search(DOMAIN, probe.embedding[None, :], k=3)[0]
    assert best[0].name == "P7"
    assert best[0].similarity == pytest.approx(1.0, abs=1e-6)  # 8-bit codes alone would be off by ~1e-3
    assert gallery.verify(DOMAIN, repair=False).consistent


def test_a_large_gallery_rebuilt_from_sql_is_gathered_on_disk_and_leaves_no_file_behind(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    writer = Gallery(sessions, IndexStore(tmp_path / "writer", 512, "test"))
    for person in range(30):
        prepared = [face(1000 * person + n) for n in range(10)]
        enrollment.enroll(writer, DOMAIN, prepared, [], model_name="test", name=f"P{person}")
    folder = tmp_path / "new-replica"  # no file, no folder yet: the first search rebuilds from SQL
    replica_gallery = Gallery(sessions, IndexStore(folder, 512, "test", compress_above=0))
    best = replica_gallery.search(DOMAIN, face(1000 * 4 + 2).embedding[None, :], k=1)[0]
    assert (best[0].name, replica_gallery.index(DOMAIN).kind) == ("P4", "sq8")
    assert sorted(p.suffix for p in folder.iterdir() if p.suffix) == [".id", ".npz"]  # no .f32 or .tmp left
