"""The IVF identity index: accurate against exact search, correct at any size, never resurrects the removed."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from service.search.index import IdentityIndex, choose_nlist
from service.search.store import IndexStore

DIM = 512


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def synthetic_gallery(people: int, faces_each: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Identities clustered in a low-dimensional subspace (as real embeddings are), a few faces each."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((64, DIM)).astype(np.float32)
    kinds = rng.standard_normal((200, 64)).astype(np.float32)
    traits = kinds[rng.integers(0, 200, people)] + 0.7 * rng.standard_normal((people, 64)).astype(np.float32)
    centres = unit(traits @ basis + 2.0 * rng.standard_normal((people, DIM)).astype(np.float32))
    faces = unit(np.repeat(centres, faces_each, axis=0) + 0.03 * rng.standard_normal((people * faces_each, DIM)))
    owners = np.repeat(np.arange(people), faces_each)
    return centres, faces, owners


def exact_top_identities(faces: np.ndarray, owners: np.ndarray, query: np.ndarray, k: int = 3) -> list[int]:
    best: dict[int, float] = {}
    for position in np.argsort(-(faces @ query)):
        best.setdefault(int(owners[position]), 0.0)
        if len(best) == k:
            break
    return list(best)


def test_recall_at_3_against_exact_search_is_at_least_099_on_20k_faces() -> None:
    centres, faces, owners = synthetic_gallery(people=10_000, faces_each=2)
    index = IdentityIndex(DIM)
    index.build(np.arange(1, len(faces) + 1), owners, faces)
    assert index.nlist > 1
    assert index.nprobe < index.nlist
    rng = np.random.default_rng(7)
    queries = unit(centres[:400] + 0.03 * rng.standard_normal((400, DIM)))
    results = index.search(queries, k=3)
    hits = sum(
        len({m.identity_id for m in found} & set(exact_top_identities(faces, owners, query)))
        for query, found in zip(queries, results, strict=True)
    )
    assert hits / (3 * len(queries)) >= 0.99


def test_search_returns_three_distinct_people_best_first() -> None:
    _, faces, owners = synthetic_gallery(people=50, faces_each=6)
    index = IdentityIndex(DIM)
    index.build(np.arange(1, len(faces) + 1), owners, faces)
    for found in index.search(faces[:20], k=3):
        assert len({m.identity_id for m in found}) == 3
        assert [m.similarity for m in found] == sorted((m.similarity for m in found), reverse=True)


def test_many_faces_of_one_person_do_not_crowd_out_the_others() -> None:
    rng = np.random.default_rng(3)
    crowd = unit(np.tile(rng.standard_normal((1, DIM)), (100, 1)) + 0.01 * rng.standard_normal((100, DIM)))
    others = unit(rng.standard_normal((2, DIM)))
    index = IdentityIndex(DIM)
    index.build(np.arange(1, 103), np.array([0] * 100 + [1, 2]), np.vstack([crowd, others]))
    found = index.search(crowd[:1], k=3)[0]
    assert sorted(m.identity_id for m in found) == [0, 1, 2]


@pytest.mark.parametrize("size", [0, 1, 2, 10])
def test_tiny_galleries_work(size: int) -> None:
    rng = np.random.default_rng(size)
    faces = unit(rng.standard_normal((max(size, 1), DIM)))[:size]
    index = IdentityIndex(DIM)
    index.build(np.arange(1, size + 1), np.arange(size), faces)
    assert choose_nlist(size) == 1
    found = index.search(unit(rng.standard_normal((2, DIM))), k=3)
    assert [len(row) for row in found] == [min(size, 3)] * 2
    if size:
        assert index.search(faces[:1], k=1)[0][0].identity_id == 0


def test_nlist_grows_with_the_gallery_but_keeps_39_points_per_list() -> None:
    for count in (10, 100, 1_000, 20_000, 1_000_000):
        nlist = choose_nlist(count)
        assert nlist == 1 or count / nlist >= 39
    assert choose_nlist(1_000_000) > choose_nlist(20_000) > choose_nlist(1_000) > 1


def test_removed_identities_never_come_back() -> None:
    _, faces, owners = synthetic_gallery(people=200, faces_each=3)
    index = IdentityIndex(DIM)
    index.build(np.arange(1, len(faces) + 1), owners, faces)
    assert index.search(faces[:1], k=1)[0][0].identity_id == 0
    index.remove_identity(0)
    for found in index.search(faces[:3], k=3):
        assert 0 not in {m.identity_id for m in found}
    index.add(np.array([10_000]), np.array([5]), faces[:1])  # a later add must not revive the removed
    assert 0 not in {m.identity_id for row in index.search(faces[:3], k=3) for m in row}


def test_incremental_adds_are_searchable_and_trigger_a_retrain_when_the_gallery_outgrows_its_lists() -> None:
    _, faces, owners = synthetic_gallery(people=2_000, faces_each=2)
    index = IdentityIndex(DIM)
    index.build(np.arange(1, 101), owners[:100], faces[:100])
    first_nlist = index.nlist
    for start in range(100, len(faces), 500):
        end = min(start + 500, len(faces))
        index.add(np.arange(start + 1, end + 1), owners[start:end], faces[start:end])
    assert index.ntotal == len(faces)
    assert index.nlist > first_nlist
    assert index.search(faces[-1:], k=1)[0][0].identity_id == owners[-1]


def test_a_rebuilt_index_answers_like_the_old_one(tmp_path: Path) -> None:
    _, faces, owners = synthetic_gallery(people=3_000, faces_each=2)
    ids = np.arange(1, len(faces) + 1)
    loader = lambda: (ids, owners, faces)  # noqa: E731
    store = IndexStore(tmp_path, DIM, "test")
    before = store.get("example.com", 1, loader).search(faces[:50], k=3)
    after = IndexStore(tmp_path, DIM, "test").rebuild("example.com", 1, loader).search(faces[:50], k=3)
    assert [[m.identity_id for m in row] for row in before] == [[m.identity_id for m in row] for row in after]


def test_an_index_file_is_reused_when_its_version_matches(tmp_path: Path) -> None:
    _, faces, owners = synthetic_gallery(people=100, faces_each=2)
    calls = []

    def loader() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        calls.append(1)
        return np.arange(1, len(faces) + 1), owners, faces

    IndexStore(tmp_path, DIM, "test").get("example.com", 4, loader)
    reloaded = IndexStore(tmp_path, DIM, "test").get("example.com", 4, loader)
    assert calls == [1]
    assert reloaded.ntotal == len(faces)


def test_a_stale_index_file_is_detected_and_rebuilt(tmp_path: Path) -> None:
    _, faces, owners = synthetic_gallery(people=100, faces_each=2)
    ids = np.arange(1, len(faces) + 1)
    IndexStore(tmp_path, DIM, "test").get("example.com", 1, lambda: (ids, owners, faces))
    # SQL has moved on to version 2 (one person fewer); the file still says version 1.
    keep = owners != 0
    fresh = IndexStore(tmp_path, DIM, "test").get("example.com", 2, lambda: (ids[keep], owners[keep], faces[keep]))
    assert fresh.ntotal == int(keep.sum())
    assert 0 not in {m.identity_id for m in fresh.search(faces[:1], k=3)[0]}


def test_a_damaged_index_file_is_rebuilt_not_fatal(tmp_path: Path) -> None:
    _, faces, owners = synthetic_gallery(people=20, faces_each=2)
    ids = np.arange(1, len(faces) + 1)
    store = IndexStore(tmp_path, DIM, "test")
    store.get("example.com", 1, lambda: (ids, owners, faces))
    store.path_for("example.com").write_bytes(b"garbage")
    again = IndexStore(tmp_path, DIM, "test").get("example.com", 1, lambda: (ids, owners, faces))
    assert again.ntotal == len(faces)


def test_domains_with_odd_names_get_separate_safe_files(tmp_path: Path) -> None:
    store = IndexStore(tmp_path, DIM, "test")
    paths = {store.path_for(d) for d in ("../../etc", "a/b", "a_b", "ünïcode.test")}
    assert len(paths) == 4
    assert all(p.parent == tmp_path for p in paths)


def test_searches_stay_correct_while_a_writer_changes_the_index() -> None:
    _, faces, owners = synthetic_gallery(people=500, faces_each=2)
    index = IdentityIndex(DIM)
    index.build(np.arange(1, len(faces) + 1), owners, faces)
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher() -> None:
        try:
            while not stop.is_set():
                assert index.search(faces[2:3], k=1)[0][0].identity_id == 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for thread in threads:
        thread.start()
    for n in range(200):
        index.add(np.array([100_000 + n]), np.array([10_000 + n]), faces[-1:])
        index.remove(np.array([100_000 + n]))
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
