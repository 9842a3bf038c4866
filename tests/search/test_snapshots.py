"""Index files are snapshots: changes stay in memory until the policy, an eviction or shutdown saves them;
a snapshot taken while changes go on is exact once the logged changes after its version are replayed."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import pytest

from service.search.index import IdentityIndex, SnapshotInterruptedError
from service.search.store import Change, IndexStore, SnapshotPolicy, apply_changes

DIM = 512
DOMAIN = "example.com"


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def gallery(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` faces, two per person, with face ids 1..count."""
    faces = unit(np.random.default_rng(seed).standard_normal((count, DIM)))
    return np.arange(1, count + 1), np.arange(count) // 2, faces


def contents_of(index: IdentityIndex) -> dict[int, int]:
    faces, owners, _ = index.contents()
    return dict(zip(faces.tolist(), owners.tolist(), strict=True))


def add_one(face_id: int, seed: int) -> Callable[[IdentityIndex], object]:
    vector = unit(np.random.default_rng(seed).standard_normal((1, DIM)))
    return lambda index: index.add(np.array([face_id]), np.array([face_id]), vector)


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> bool:
    """Poll until ``condition`` holds (the saver thread works on its own schedule)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_changes_stay_in_memory_until_the_count_in_the_policy_is_reached(tmp_path: Path) -> None:
    store = IndexStore(tmp_path, DIM, "test", policy=SnapshotPolicy(every_changes=3))
    data = gallery(40)
    store.get(DOMAIN, 1, lambda: data)  # rebuilt from SQL: saved at once
    assert store.file_version(DOMAIN) == 1
    for version in (2, 3):
        store.update(DOMAIN, version - 1, version, add_one(1000 + version, version), lambda: data)
    assert store.file_version(DOMAIN) == 1
    assert store.unsaved_domains() == [DOMAIN]
    store.update(DOMAIN, 3, 4, add_one(1004, 4), lambda: data)
    assert store.file_version(DOMAIN) == 4
    assert store.unsaved_domains() == []


def test_the_background_saver_writes_an_index_once_it_has_been_idle(tmp_path: Path) -> None:
    policy = SnapshotPolicy(every_changes=1000, idle_seconds=0.05, background=True)
    store = IndexStore(tmp_path, DIM, "test", policy=policy)
    data = gallery(40)
    try:
        store.get(DOMAIN, 1, lambda: data)
        assert wait_for(lambda: store.file_version(DOMAIN) == 1)
        store.update(DOMAIN, 1, 2, add_one(500, 1), lambda: data)  # returns before any file is written
        assert wait_for(lambda: store.file_version(DOMAIN) == 2)
    finally:
        store.close()


def test_close_saves_every_changed_index(tmp_path: Path) -> None:
    policy = SnapshotPolicy(every_changes=1000, background=True)
    store = IndexStore(tmp_path, DIM, "test", policy=policy)
    data = gallery(40)
    for domain in ("a.test", "b.test"):
        store.get(domain, 1, lambda: data)
    assert wait_for(lambda: store.unsaved_domains() == [])
    store.update("a.test", 1, 2, add_one(500, 1), lambda: data)
    store.update("b.test", 1, 2, add_one(501, 2), lambda: data)
    store.close()
    assert (store.file_version("a.test"), store.file_version("b.test")) == (2, 2)
    reloaded = IndexStore(tmp_path, DIM, "test").read_file("a.test")
    assert reloaded is not None
    assert 500 in contents_of(reloaded[0])


def test_each_file_written_is_reported_with_its_version(tmp_path: Path) -> None:
    store = IndexStore(tmp_path, DIM, "test", policy=SnapshotPolicy(every_changes=2))
    reported: list[tuple[str, int]] = []
    store.on_saved = lambda domain, version: reported.append((domain, version))
    data = gallery(40)
    store.get(DOMAIN, 1, lambda: data)
    store.update(DOMAIN, 1, 2, add_one(500, 1), lambda: data)
    store.update(DOMAIN, 2, 3, add_one(501, 2), lambda: data)
    assert reported == [(DOMAIN, 1), (DOMAIN, 3)]


def test_a_snapshot_taken_while_changes_go_on_is_exact_once_the_later_changes_are_replayed(tmp_path: Path) -> None:
    faces, owners, vectors = gallery(4000)
    index = IdentityIndex(DIM)
    index.build(faces, owners, vectors)
    assert index.nlist > 4
    extra = unit(np.random.default_rng(9).standard_normal((2, DIM)))
    later: list[Change] = [
        ("add", 9001, 77, extra[0]),
        ("remove", 5, 2, None),
        ("add", 9002, 78, extra[1]),
        ("remove", int(faces[-1]), int(owners[-1]), None),
    ]
    arrays: dict[str, np.ndarray] = {}
    lists_written = 0

    def write(name: str, array: np.ndarray) -> None:
        nonlocal lists_written
        arrays[name] = np.array(array)
        if name.startswith("ids_"):
            lists_written += 1
            if lists_written == 2:
                apply_changes(index, later)  # the changes land while the snapshot is half written

    index.write_arrays(write)
    loaded = IdentityIndex.read_arrays(arrays.__getitem__, set(arrays), DIM)
    apply_changes(loaded, later)
    assert contents_of(loaded) == contents_of(index)
    assert loaded.search(extra, k=1)[0][0].identity_id == 77


def test_a_retrain_while_a_snapshot_is_written_voids_the_snapshot() -> None:
    faces, owners, vectors = gallery(400)
    index = IdentityIndex(DIM)
    index.build(faces, owners, vectors)

    def write(name: str, _array: np.ndarray) -> None:
        if name.startswith("ids_"):
            index.retrain()

    with pytest.raises(SnapshotInterruptedError):
        index.write_arrays(write)


def test_an_older_snapshot_never_replaces_a_newer_file_in_a_shared_folder(tmp_path: Path) -> None:
    # Two workers share one index folder; the one that is behind must not roll the file back.
    data = gallery(40)
    ahead = IndexStore(tmp_path, DIM, "test", policy=SnapshotPolicy(every_changes=1))
    behind = IndexStore(tmp_path, DIM, "test", policy=SnapshotPolicy(every_changes=1))
    behind.get(DOMAIN, 1, lambda: data)
    ahead.get(DOMAIN, 1, lambda: data)
    for version in (2, 3):
        ahead.update(DOMAIN, version - 1, version, add_one(600 + version, version), lambda: data)
    behind.update(DOMAIN, 1, 2, add_one(602, 2), lambda: data)
    assert behind.file_version(DOMAIN) == 3
    assert behind.unsaved_domains() == []  # a newer file holds everything it has


def test_a_file_of_the_previous_format_still_loads(tmp_path: Path) -> None:
    faces, owners, vectors = gallery(200)
    quantizer = faiss.IndexFlatIP(DIM)
    quantizer.add(np.zeros((1, DIM), dtype=np.float32))
    legacy = faiss.IndexIVFFlat(quantizer, DIM, 1, faiss.METRIC_INNER_PRODUCT)
    legacy.add_with_ids(vectors, faces)
    identity_of = np.full(int(faces.max()) + 1, -1, dtype=np.int64)
    identity_of[faces] = owners
    store = IndexStore(tmp_path, DIM, "test")
    np.savez(
        store.path_for(DOMAIN),
        meta=np.array([1, 7, DIM, len(faces)], dtype=np.int64),
        model=np.array("test"),
        index=faiss.serialize_index(legacy),
        identity_of=identity_of,
    )
    found = store.read_file(DOMAIN)
    assert found is not None
    index, version = found
    assert version == 7
    assert contents_of(index) == dict(zip(faces.tolist(), owners.tolist(), strict=True))


def test_a_truncated_file_is_unreadable_and_the_index_is_rebuilt(tmp_path: Path) -> None:
    data = gallery(300)
    store = IndexStore(tmp_path, DIM, "test")
    store.get(DOMAIN, 1, lambda: data)
    path = store.path_for(DOMAIN)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    fresh = IndexStore(tmp_path, DIM, "test")
    assert fresh.read_file(DOMAIN) is None
    assert fresh.get(DOMAIN, 1, lambda: data).ntotal == 300


def test_a_saved_index_answers_searches_like_the_one_in_memory(tmp_path: Path) -> None:
    faces, owners, vectors = gallery(3000)
    store = IndexStore(tmp_path, DIM, "test")
    before = store.get(DOMAIN, 1, lambda: (faces, owners, vectors))
    found = IndexStore(tmp_path, DIM, "test").read_file(DOMAIN)
    assert found is not None
    after = found[0]
    assert (after.nlist, after.nprobe, after.ntotal) == (before.nlist, before.nprobe, before.ntotal)
    assert [[m.face_id for m in row] for row in after.search(vectors[:50])] == [
        [m.face_id for m in row] for row in before.search(vectors[:50])
    ]
