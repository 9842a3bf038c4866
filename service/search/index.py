"""One domain's face index: FAISS IVF on inner product of L2-normalised vectors, flat or SQ8-compressed.

FAISS ids are face ids; an :class:`IdentityMap` turns face hits into people so that search can return
the best distinct identities. IVF lists grow with the gallery and ``nprobe`` is calibrated against exact
search after every training so recall@3 stays >= 0.99.

Large galleries may be stored compressed (``IndexIVFScalarQuantizer``, 8 bits a dimension: 520 bytes a face
instead of 2,056). Search then looks deeper in the compressed index and re-ranks that short list with the
exact vectors, which come from the caller (SQL, the source of truth, keeps every embedding), so the
similarities returned are exact and the ranking is the exact one among the candidates.
"""

from __future__ import annotations

import math
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np
from faiss.contrib.inspect_tools import get_invlist

MIN_POINTS_PER_LIST = 39  # FAISS warns below this many training points per centroid
MAX_TRAINING_POINTS_PER_LIST = 64  # enough for stable centroids; keeps a 1M rebuild well under 2 minutes
MIN_SQ_TRAINING_POINTS = 20_000  # the 8-bit ranges of each dimension need a broad sample
MIN_COMPRESSED_FACES = 256  # below this a compressed index saves nothing worth its training
KMEANS_ITERATIONS = 12
RETRAIN_GROWTH = 4  # retrain once the gallery is this many times its training size
TARGET_RECALL = 0.995  # calibrated with margin above the promised 0.99
CALIBRATION_QUERIES = 256
CALIBRATION_K = 3
FIRST_SEARCH_DEPTH = 16
SQ_RANGE_MARGIN = 0.2  # 8-bit ranges widened by this share each side: later faces are rarely clipped
RERANK_DEPTH = 2  # a compressed index looks this many times deeper; the exact vectors then re-rank the hits
CHUNK_ROWS = 65_536  # vectors encoded or compared at a time: bounds the temporary memory of a build
MAP_OVERHEAD_BYTES = 16 * 1024  # Python and FAISS objects of one index, counted in its memory estimate
LIST_HEADROOM = 0.05  # spare room allocated in every list: ~50,000 enrollments at 1M faces allocate nothing
NO_MAP, HASHTABLE_MAP = 0, 2  # faiss.DirectMap.NoMap and .Hashtable (absent from FAISS's type stubs)
DIRECT_MAP_BYTES = 56  # a face's entry in FAISS's id -> (list, offset) hash table

Kind = Literal["flat", "sq8"]
# Face ids -> (the ids still known, their exact vectors); ids the source no longer has are left out.
ExactVectors = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
# Writes one named array of a snapshot (see :meth:`IdentityIndex.write_arrays`).
ArrayWriter = Callable[[str, np.ndarray], None]


class SnapshotInterruptedError(RuntimeError):
    """The index was retrained while a snapshot was being written; the snapshot is void."""


@dataclass(frozen=True, slots=True)
class Match:
    """The best face of one identity for a query."""

    identity_id: int
    face_id: int
    similarity: float


def choose_nlist(count: int) -> int:
    """Inverted lists for a gallery of ``count`` faces: ~sqrt(n), never under 39 training points a list.

    sqrt(n) keeps both training (k-means cost grows with n·nlist) and a probe's scan (n/nlist per list)
    small on a CPU; nprobe is then calibrated for recall.
    """
    if count < 2 * MIN_POINTS_PER_LIST:
        return 1
    return max(1, min(int(math.sqrt(count)), count // MIN_POINTS_PER_LIST))


def choose_kind(count: int, compress_above: int | None) -> Kind:
    """``sq8`` for a gallery of more than ``compress_above`` faces (None: never), else ``flat``."""
    if compress_above is not None and count > compress_above and count >= MIN_COMPRESSED_FACES:
        return "sq8"
    return "flat"


def _as_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim)


class IdentityMap:
    """Face id -> identity id as two sorted arrays: 16 bytes a face, however large the ids.

    A dense array indexed by face id would cost 8 bytes per face id *ever issued*: with 10,000 tenants
    sharing one id sequence, every small gallery would carry megabytes of empty slots.
    """

    def __init__(self, face_ids: np.ndarray | None = None, identity_ids: np.ndarray | None = None) -> None:
        faces = np.asarray(face_ids if face_ids is not None else [], dtype=np.int64)
        owners = np.asarray(identity_ids if identity_ids is not None else [], dtype=np.int64)
        order = np.argsort(faces, kind="stable")
        self._size = len(faces)
        capacity = self._size + int(self._size * LIST_HEADROOM) + 16  # like the lists: room to enroll
        self._faces = _grown(faces[order], self._size, capacity)
        self._owners = _grown(owners[order], self._size, capacity)

    def __len__(self) -> int:
        return self._size

    @property
    def faces(self) -> np.ndarray:
        """Known face ids, ascending (a view)."""
        return self._faces[: self._size]

    @property
    def owners(self) -> np.ndarray:
        """The identity of each face in :attr:`faces` (a view)."""
        return self._owners[: self._size]

    @property
    def nbytes(self) -> int:
        """Memory held, spare capacity included."""
        return int(self._faces.nbytes + self._owners.nbytes)

    def lookup(self, face_ids: np.ndarray) -> np.ndarray:
        """The identity of each face id (any shape); -1 for unknown ids."""
        wanted = np.asarray(face_ids, dtype=np.int64)
        faces = self.faces
        if not len(faces):
            return np.full(wanted.shape, -1, dtype=np.int64)
        positions = np.minimum(np.searchsorted(faces, wanted), len(faces) - 1)
        found: np.ndarray = np.where(faces[positions] == wanted, self.owners[positions], -1)
        return found

    def assign(self, face_ids: np.ndarray, identity_ids: np.ndarray) -> None:
        """Set the identity of these faces (new ids are usually the largest yet: then it is an append)."""
        faces = np.asarray(face_ids, dtype=np.int64)
        owners = np.asarray(identity_ids, dtype=np.int64)
        if not len(faces):
            return
        self.drop(faces)
        order = np.argsort(faces, kind="stable")
        faces, owners = faces[order], owners[order]
        if self._size and faces[0] <= self._faces[self._size - 1]:
            positions = np.searchsorted(self.faces, faces)
            self._faces = np.insert(self.faces, positions, faces)
            self._owners = np.insert(self.owners, positions, owners)
            self._size = len(self._faces)
            return
        needed = self._size + len(faces)
        if needed > len(self._faces):
            # Grow by doubling so that one enrollment at a time costs amortised O(1), not a full copy.
            capacity = max(needed, 2 * len(self._faces), 16)
            self._faces = _grown(self._faces, self._size, capacity)
            self._owners = _grown(self._owners, self._size, capacity)
        self._faces[self._size : needed] = faces
        self._owners[self._size : needed] = owners
        self._size = needed

    def drop(self, face_ids: np.ndarray) -> None:
        """Forget these faces (unknown ids are ignored)."""
        wanted = np.asarray(face_ids, dtype=np.int64)
        faces = self.faces
        if not len(wanted) or not len(faces):
            return
        positions = np.minimum(np.searchsorted(faces, wanted), len(faces) - 1)
        present = np.unique(positions[faces[positions] == wanted])
        if len(present):
            self._faces = np.delete(faces, present)
            self._owners = np.delete(self.owners, present)
            self._size = len(self._faces)

    def faces_of(self, identity_id: int) -> np.ndarray:
        """Every face id of one identity."""
        found: np.ndarray = self.faces[self.owners == identity_id].copy()
        return found

    def identity_count(self) -> int:
        """Distinct identities."""
        return int(np.unique(self.owners).size)


def _grown(array: np.ndarray, used: int, capacity: int) -> np.ndarray:
    grown = np.empty(capacity, dtype=array.dtype)
    grown[:used] = array[:used]
    return grown


class IdentityIndex:
    """A thread-safe IVF index of faces; searches return distinct identities.

    ``compress_above``: galleries of more faces are built as SQ8 (None: always flat).
    ``auto_retrain``: whether :meth:`add` retrains in place when the gallery outgrows its lists; an owner
    that retrains in the background (the index store) turns it off.
    """

    def __init__(self, dim: int = 512, compress_above: int | None = None) -> None:
        self.dim = dim
        self.compress_above = compress_above
        self.auto_retrain = True
        self._lock = threading.RLock()
        self._map = IdentityMap()
        self._index = _empty_index(dim, 1, "flat")
        self._skeleton: np.ndarray | None = None
        self.trained_size = 0
        self.generation = 0  # bumped whenever the FAISS index object is replaced (build, retrain)

    # ----- description --------------------------------------------------------------------------
    @property
    def kind(self) -> Kind:
        """``flat`` (exact vectors in the lists) or ``sq8`` (8-bit codes, re-ranked with exact vectors)."""
        return "sq8" if isinstance(self._index, faiss.IndexIVFScalarQuantizer) else "flat"

    @property
    def nlist(self) -> int:
        """Number of inverted lists."""
        return int(self._index.nlist)

    @property
    def nprobe(self) -> int:
        """Lists visited per query."""
        return int(self._index.nprobe)

    @property
    def ntotal(self) -> int:
        """Faces in the index."""
        return int(self._index.ntotal)

    @property
    def identity_count(self) -> int:
        """Distinct identities in the index."""
        with self._lock:
            return self._map.identity_count()

    def memory_bytes(self) -> int:
        """Estimated memory held: codes and ids of every face (with the lists' headroom), the id hash table,
        the centroids and the identity map."""
        index = self._index
        per_face = (index.code_size + 8) * (1 + LIST_HEADROOM) + DIRECT_MAP_BYTES
        return int(index.ntotal * per_face + index.nlist * self.dim * 4 + self._map.nbytes + MAP_OVERHEAD_BYTES)

    # ----- construction -------------------------------------------------------------------------
    def build(self, face_ids: np.ndarray, identity_ids: np.ndarray, vectors: np.ndarray) -> None:
        """Replace the contents: train for this gallery size, add everything, calibrate nprobe.

        ``vectors`` may be a memory-mapped array: it is read in chunks and never copied whole.
        """
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        face_ids = np.asarray(face_ids, dtype=np.int64)
        identity_ids = np.asarray(identity_ids, dtype=np.int64)
        count = len(face_ids)
        kind = choose_kind(count, self.compress_above)
        nlist = choose_nlist(count)
        index = _empty_index(self.dim, nlist, kind)
        if not index.is_trained:
            index.cp.niter = KMEANS_ITERATIONS
            wanted = nlist * MAX_TRAINING_POINTS_PER_LIST
            if kind == "sq8":
                wanted = max(wanted, MIN_SQ_TRAINING_POINTS)
            index.train(_sample_rows(vectors, wanted, seed=0))
        if count:
            _fill_lists(index, vectors, face_ids)
        if nlist > 1:
            index.nprobe = _calibrate_nprobe(index, vectors, face_ids)
        identity_map = IdentityMap(face_ids, identity_ids)
        with self._lock:
            self._index = index
            self._map = identity_map
            self._skeleton = None
            self.trained_size = count
            self.generation += 1

    # ----- changes ------------------------------------------------------------------------------
    def add(self, face_ids: np.ndarray, identity_ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add faces (re-adding a face id replaces it); retrains when the gallery has outgrown its lists."""
        vectors = _as_matrix(vectors, self.dim)
        face_ids = np.asarray(face_ids, dtype=np.int64)
        if not len(face_ids):
            return
        with self._lock:
            _remove_ids(self._index, face_ids)
            self._map.assign(face_ids, np.asarray(identity_ids, dtype=np.int64))
            self._index.add_with_ids(vectors, face_ids)
            if self.auto_retrain and self.needs_retrain():
                self.retrain()

    def remove(self, face_ids: np.ndarray) -> int:
        """Remove faces by id; returns how many were present."""
        face_ids = np.asarray(face_ids, dtype=np.int64)
        if not len(face_ids):
            return 0
        with self._lock:
            removed = _remove_ids(self._index, face_ids)
            self._map.drop(face_ids)
            return removed

    def remove_identity(self, identity_id: int) -> int:
        """Remove every face of one identity."""
        with self._lock:
            return self.remove(self._map.faces_of(identity_id))

    def needs_retrain(self) -> bool:
        """Whether the gallery has outgrown its lists, or crossed the size at which it should change kind."""
        count = self.ntotal
        grown = count >= RETRAIN_GROWTH * max(self.trained_size, 1) and choose_nlist(count) > self.nlist
        wanted = choose_kind(count, self.compress_above)
        # Going back to flat waits until the gallery is well under the threshold, so it does not flap.
        shrunk = self.kind == "sq8" and choose_kind(2 * count, self.compress_above) == "flat"
        return grown or (wanted == "sq8" and self.kind == "flat") or shrunk

    def contents(self, spill_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All (face ids, identity ids, vectors) currently indexed; SQ8 vectors are decoded (approximate).

        With ``spill_dir`` the vectors go to a memory-mapped file there (unlinked at once, so it vanishes
        with the array): a large compressed gallery decodes to 4 times its size in memory otherwise.
        """
        with self._lock:
            sizes = [_lists(self._index).list_size(list_no) for list_no in range(self.nlist)]
            total = int(sum(sizes))
            vectors = _new_matrix(total, self.dim, spill_dir)
            face_ids = np.empty(total, dtype=np.int64)
            position = 0
            for list_no, size in enumerate(sizes):
                if not size:
                    continue
                ids, codes = self._list_arrays(list_no)
                face_ids[position : position + size] = ids
                vectors[position : position + size] = self._decode(list_no, codes)
                position += size
            return face_ids, self._map.lookup(face_ids), vectors

    def retrain(self) -> None:
        """Retrain the lists on the current contents."""
        with self._lock:
            self.build(*self.contents())

    def _list_arrays(self, list_no: int) -> tuple[np.ndarray, np.ndarray]:
        ids, codes = get_invlist(self._index.invlists, list_no)  # type: ignore[no-untyped-call]
        return np.asarray(ids, dtype=np.int64), np.asarray(codes, dtype=np.uint8).reshape(len(ids), -1)

    def _decode(self, list_no: int, codes: np.ndarray) -> np.ndarray:
        if self.kind == "flat":
            return codes.view(np.float32).reshape(-1, self.dim)
        # sa_decode expects each code prefixed with its list number (little-endian, coarse_code_size bytes).
        width = int(getattr(self._index, "coarse_code_size")())  # noqa: B009 - missing from FAISS's stubs
        prefix = np.frombuffer(np.array([list_no], dtype="<i8").tobytes()[:width], dtype=np.uint8)
        full = np.hstack([np.tile(prefix, (len(codes), 1)), codes])
        return np.asarray(self._index.sa_decode(full), dtype=np.float32)

    # ----- search -------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int = 3, exact: ExactVectors | None = None) -> list[list[Match]]:
        """The ``k`` most similar distinct identities per query, best first.

        On a compressed index ``exact`` supplies the exact vectors of the candidates, which are re-ranked
        with them (faces it no longer knows are dropped); without it the 8-bit similarities are returned.
        """
        queries = _as_matrix(queries, self.dim)
        if not len(queries):
            return []
        results: list[list[Match]] = [[] for _ in range(len(queries))]
        pending = np.arange(len(queries))
        depth = max(FIRST_SEARCH_DEPTH, 4 * k)
        while len(pending):
            with self._lock:
                total = self.ntotal
                if total == 0:
                    return results
                rerank = exact is not None and self.kind == "sq8"
                looked = min(total, depth * (RERANK_DEPTH if rerank else 1))
                similarities, ids = self._index.search(queries[pending], looked)
                owners = self._map.lookup(ids)
            if rerank:
                assert exact is not None
                # Outside the lock: the exact vectors may come from SQL.
                similarities, ids, owners = _rerank(queries[pending], ids, owners, exact)
            still_short = []
            for row, query_index in enumerate(pending):
                best = _best_per_identity(similarities[row], ids[row], owners[row], k)
                results[query_index] = best
                if len(best) < k and looked < total:
                    still_short.append(query_index)
            pending = np.asarray(still_short, dtype=np.int64)
            depth *= 4
        return results

    # ----- persistence --------------------------------------------------------------------------
    def write_arrays(self, write: ArrayWriter) -> None:
        """Hand the index to ``write`` as named arrays, one inverted list at a time.

        Each list is copied under the lock and written outside it, so searches and changes go on and
        memory stays flat. Changes made meanwhile may or may not be in the result: the caller records the
        version it had *before* starting, and replaying the changes after that version (adds and removes
        are idempotent) makes the loaded index exact. A retrain meanwhile voids the snapshot.
        """
        with self._lock:
            generation = self.generation
            if self._skeleton is None:
                self._skeleton = _skeleton(self._index)
            header = np.array([self.trained_size, self.nprobe, self.nlist], dtype=np.int64)
            skeleton = self._skeleton
        write("skeleton", skeleton)
        write("header", header)
        for list_no in range(int(header[2])):
            with self._lock:
                if self.generation != generation:
                    raise SnapshotInterruptedError("the index was retrained while it was being saved")
                if not _lists(self._index).list_size(list_no):
                    continue
                ids, codes = self._list_arrays(list_no)
            write(f"ids_{list_no}", ids)
            write(f"codes_{list_no}", codes.reshape(-1))
        with self._lock:
            faces, owners = self._map.faces.copy(), self._map.owners.copy()
        write("map_faces", faces)
        write("map_owners", owners)

    @classmethod
    def read_arrays(
        cls, read: Callable[[str], np.ndarray], names: set[str], dim: int, compress_above: int | None = None
    ) -> IdentityIndex:
        """An index from arrays written by :meth:`write_arrays` (``names``: those present)."""
        loaded = faiss.deserialize_index(np.asarray(read("skeleton"), dtype=np.uint8))
        if not isinstance(loaded, faiss.IndexIVFFlat | faiss.IndexIVFScalarQuantizer) or loaded.d != dim:
            raise ValueError(f"not an IVF index of dimension {dim}")
        trained_size, nprobe, nlist = (int(v) for v in read("header")[:3])
        if nlist != loaded.nlist:
            raise ValueError("the list count does not match the index")
        invlists = _lists(loaded)
        total = 0
        for list_no in range(nlist):
            if f"ids_{list_no}" not in names:
                continue
            ids = np.ascontiguousarray(read(f"ids_{list_no}"), dtype=np.int64)
            codes = np.ascontiguousarray(read(f"codes_{list_no}"), dtype=np.uint8)
            if codes.size != len(ids) * loaded.code_size:
                raise ValueError(f"list {list_no} is truncated")
            _reserve(invlists, list_no, len(ids))
            invlists.update_entries(list_no, 0, len(ids), faiss.swig_ptr(ids), faiss.swig_ptr(codes))
            total += len(ids)
        loaded.ntotal = total
        loaded.nprobe = nprobe
        _index_ids(loaded)
        index = cls(dim, compress_above)
        index._index = loaded
        index._map = IdentityMap(read("map_faces"), read("map_owners"))
        index.trained_size = trained_size
        return index

    @classmethod
    def from_legacy(
        cls, blob: np.ndarray, identity_of: np.ndarray, trained_size: int, dim: int, compress_above: int | None = None
    ) -> IdentityIndex:
        """An index from a format-1 file (a serialised FAISS index and a dense face -> identity array)."""
        loaded = faiss.deserialize_index(np.asarray(blob, dtype=np.uint8))
        if not isinstance(loaded, faiss.IndexIVFFlat) or loaded.d != dim:
            raise ValueError(f"not an IVF-Flat index of dimension {dim}")
        owners = np.asarray(identity_of, dtype=np.int64)
        faces = np.flatnonzero(owners >= 0)
        _index_ids(loaded)
        index = cls(dim, compress_above)
        index._index = loaded
        index._map = IdentityMap(faces, owners[faces])
        index.trained_size = int(trained_size)
        return index


def _empty_index(dim: int, nlist: int, kind: Kind) -> faiss.IndexIVF:
    quantizer = faiss.IndexFlatIP(dim)
    index: faiss.IndexIVF
    if kind == "sq8":
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        # Trained on a sample, the per-dimension ranges would clip faces enrolled later (errors up to 0.08
        # instead of 0.0003): a 20% margin each side keeps the worst face at cosine 0.9998 of its original.
        index.sq.rangestat_arg = SQ_RANGE_MARGIN
    else:
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        if nlist == 1:
            # One list needs no training: every vector lands in it and search is exact.
            quantizer.add(np.zeros((1, dim), dtype=np.float32))
            index.is_trained = True
    index.nprobe = 1
    _index_ids(index)
    return index


def _index_ids(index: faiss.IndexIVF) -> None:
    """(Re)build FAISS's id -> (list, offset) hash table, so removals need not scan every list."""
    index.set_direct_map_type(NO_MAP)  # setting the type it already has would keep a stale table
    index.set_direct_map_type(HASHTABLE_MAP)


def _reserve(invlists: faiss.InvertedLists, list_no: int, size: int) -> None:
    """Size an (empty) list at ``size`` entries with :data:`LIST_HEADROOM` spare room behind them.

    A list grows by doubling once full: allocated exactly, the first enrollment into each list of a 1M
    gallery would cost a 2 MB reallocation (+430 MB over 300 enrollments); with headroom nothing moves
    until a list has grown by 5%.
    """
    invlists.resize(list_no, size + int(size * LIST_HEADROOM) + 1)  # from empty: allocated exactly this
    invlists.resize(list_no, size)  # a smaller size keeps the allocation


def _remove_ids(index: faiss.IndexIVF, face_ids: np.ndarray) -> int:
    """Remove faces through FAISS's id hash table: O(faces removed), not a scan of every list."""
    ids = np.ascontiguousarray(face_ids, dtype=np.int64)
    return int(index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids))))


def _lists(index: faiss.IndexIVF) -> faiss.InvertedLists:
    invlists = index.invlists
    assert invlists is not None
    return invlists


def _skeleton(index: faiss.IndexIVF) -> np.ndarray:
    """The serialised index without its lists: centroids, the 8-bit ranges, nprobe (a few hundred KB)."""
    dim, nlist = index.d, index.nlist
    quantizer = faiss.IndexFlatIP(dim)
    quantizer.add(index.quantizer.reconstruct_n(0, nlist))
    empty: faiss.IndexIVF
    if isinstance(index, faiss.IndexIVFScalarQuantizer):
        empty = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        faiss.copy_array_to_vector(faiss.vector_to_array(index.sq.trained), empty.sq.trained)
    else:
        empty = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    empty.is_trained = True
    empty.nprobe = index.nprobe
    return np.asarray(faiss.serialize_index(empty), dtype=np.uint8)


def _new_matrix(rows: int, dim: int, spill_dir: Path | None) -> np.ndarray:
    """A float32 matrix in memory, or memory-mapped from an already-unlinked file in ``spill_dir``."""
    if spill_dir is None or rows == 0:
        return np.empty((rows, dim), dtype=np.float32)
    spill_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=spill_dir, prefix="spill-", suffix=".f32") as handle:
        handle.truncate(rows * dim * 4)
        # The mapping keeps the pages; the name disappears when the handle closes.
        return np.memmap(handle.name, dtype=np.float32, mode="r+", shape=(rows, dim))


def _sample_rows(vectors: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Up to ``count`` distinct rows chosen at random (copied: ``vectors`` may be memory-mapped)."""
    if count >= len(vectors):
        return np.ascontiguousarray(vectors)
    return np.ascontiguousarray(vectors[np.random.default_rng(seed).choice(len(vectors), size=count, replace=False)])


def _fill_lists(index: faiss.IndexIVF, vectors: np.ndarray, face_ids: np.ndarray) -> None:
    """Add every vector with each inverted list allocated once at its final size, chunk by chunk.

    ``add_with_ids`` appends vector by vector and the lists grow by doubling, leaving up to half of their
    memory unused; here the lists are sized first, then filled, and only one chunk is decoded at a time.
    """
    count = len(vectors)
    assignment = np.empty(count, dtype=np.int64)
    for start in range(0, count, CHUNK_ROWS):
        _, nearest = index.quantizer.search(np.ascontiguousarray(vectors[start : start + CHUNK_ROWS]), 1)
        assignment[start : start + CHUNK_ROWS] = nearest[:, 0]
    invlists = _lists(index)
    sizes = np.bincount(assignment, minlength=index.nlist)
    for list_no in np.flatnonzero(sizes):
        _reserve(invlists, int(list_no), int(sizes[list_no]))
    filled = np.zeros(index.nlist, dtype=np.int64)
    code_size = index.code_size
    for start in range(0, count, CHUNK_ROWS):
        chunk = np.ascontiguousarray(vectors[start : start + CHUNK_ROWS])
        lists = np.ascontiguousarray(assignment[start : start + CHUNK_ROWS])
        codes = np.empty((len(chunk), code_size), dtype=np.uint8)
        index.encode_vectors(len(chunk), faiss.swig_ptr(chunk), faiss.swig_ptr(lists), faiss.swig_ptr(codes), False)
        order = np.argsort(lists, kind="stable")
        sorted_lists = lists[order]
        codes = np.ascontiguousarray(codes[order])
        ids = np.ascontiguousarray(face_ids[start : start + CHUNK_ROWS][order])
        present = np.unique(sorted_lists)
        bounds = np.searchsorted(sorted_lists, np.append(present, index.nlist))
        for position, list_no in enumerate(present.tolist()):
            begin, end = int(bounds[position]), int(bounds[position + 1])
            invlists.update_entries(
                list_no,
                int(filled[list_no]),
                end - begin,
                faiss.swig_ptr(ids[begin:end]),
                faiss.swig_ptr(codes[begin:end]),
            )
            filled[list_no] += end - begin
    index.ntotal = count
    _index_ids(index)


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force inner-product search over ``vectors`` (read in chunks), the reference for recall.

    Returns (similarities, row positions), best first.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    best_sims = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), CHUNK_ROWS):
        chunk = np.ascontiguousarray(vectors[start : start + CHUNK_ROWS], dtype=np.float32)
        sims, rows = faiss.knn(queries, chunk, min(k, len(chunk)), metric=faiss.METRIC_INNER_PRODUCT)
        best_sims = np.hstack([best_sims, sims])
        best_rows = np.hstack([best_rows, rows + start])
        if best_sims.shape[1] > k:
            keep = np.argsort(-best_sims, axis=1, kind="stable")[:, :k]
            best_sims = np.take_along_axis(best_sims, keep, axis=1)
            best_rows = np.take_along_axis(best_rows, keep, axis=1)
    order = np.argsort(-best_sims, axis=1, kind="stable")
    return np.take_along_axis(best_sims, order, axis=1), np.take_along_axis(best_rows, order, axis=1)


def _rerank(
    queries: np.ndarray, ids: np.ndarray, owners: np.ndarray, exact: ExactVectors
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Recompute each candidate's similarity from its exact vector and re-sort every row, best first."""
    wanted = np.unique(ids[ids >= 0])
    known, vectors = exact(wanted)
    known = np.asarray(known, dtype=np.int64)
    order = np.argsort(known)
    known, vectors = known[order], np.asarray(vectors, dtype=np.float32)[order]
    similarities = np.full(ids.shape, -np.inf, dtype=np.float32)
    if len(known):
        positions = np.minimum(np.searchsorted(known, ids), len(known) - 1)
        found = (known[positions] == ids) & (ids >= 0)
        exact_sims = np.einsum("rdk,rk->rd", vectors[positions], queries)
        similarities = np.where(found, exact_sims, -np.inf).astype(np.float32)
    ranking = np.argsort(-similarities, axis=1, kind="stable")
    similarities = np.take_along_axis(similarities, ranking, axis=1)
    dropped = ~np.isfinite(similarities)
    ids = np.where(dropped, -1, np.take_along_axis(ids, ranking, axis=1))
    owners = np.where(dropped, -1, np.take_along_axis(owners, ranking, axis=1))
    return similarities, ids, owners


def _best_per_identity(similarities: np.ndarray, ids: np.ndarray, owners: np.ndarray, k: int) -> list[Match]:
    best: dict[int, Match] = {}
    for similarity, face_id, identity_id in zip(similarities.tolist(), ids.tolist(), owners.tolist(), strict=True):
        if face_id < 0 or identity_id < 0 or identity_id in best:
            continue  # hits arrive best first, so the first hit of an identity is its best
        best[identity_id] = Match(identity_id=identity_id, face_id=face_id, similarity=float(similarity))
        if len(best) == k:
            break
    return list(best.values())


def _calibrate_nprobe(index: faiss.IndexIVF, vectors: np.ndarray, face_ids: np.ndarray) -> int:
    """Smallest nprobe (doubling) whose leave-one-out recall@3 against exact search reaches the target.

    Probes are gallery faces themselves (their own hit dropped), so the calibration follows the structure
    of the real data rather than an assumed noise model. A compressed index is measured as it searches:
    deeper, then re-ranked with the exact vectors.
    """
    take = min(CALIBRATION_QUERIES, len(vectors))
    queries = _sample_rows(vectors, take, seed=1)
    k = min(CALIBRATION_K + 1, len(vectors))
    _, positions = exact_search(vectors, queries, k)
    truth = face_ids[positions][:, 1:]
    exact = None
    if isinstance(index, faiss.IndexIVFScalarQuantizer):
        order = np.argsort(face_ids)
        sorted_ids = face_ids[order]

        def exact(wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            at = order[np.searchsorted(sorted_ids, wanted)]
            sorted_at = np.argsort(at)
            return wanted[sorted_at], np.asarray(vectors[at[sorted_at]])

    nprobe = 1
    while nprobe < index.nlist and _recall(index, queries, truth, k, nprobe, exact) < TARGET_RECALL:
        nprobe *= 2
    return min(nprobe, int(index.nlist))


def _recall(
    index: faiss.IndexIVF,
    queries: np.ndarray,
    truth: np.ndarray,
    k: int,
    nprobe: int,
    exact: ExactVectors | None,
) -> float:
    index.nprobe = nprobe
    if exact is None:
        _, found = index.search(queries, k)
    else:
        _, candidates = index.search(queries, min(index.ntotal, max(FIRST_SEARCH_DEPTH, 4 * k) * RERANK_DEPTH))
        _, ranked, _ = _rerank(queries, candidates, np.zeros_like(candidates), exact)
        found = ranked[:, :k]
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size
