"""Per-domain indexes in memory, loaded on first use, evicted beyond a memory budget, saved as snapshots.

SQL is the source of truth: every gallery change bumps the domain's version and is logged there. An
index file is a *snapshot* recording the version it holds; a process loading it replays the logged
changes after that version, so a file may lag behind SQL without harm. Changes therefore touch only
memory; snapshots are written when a policy says so (after N changes, after a quiet spell, on eviction,
on shutdown), by a background thread in a server. Each snapshot is reported (``on_saved``) so the change
log can be pruned below what every holder's file still needs.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import functools
import hashlib
import itertools
import logging
import os
import re
import tempfile
import threading
import time
import uuid
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from service.search.index import IdentityIndex, SnapshotInterruptedError

logger = logging.getLogger(__name__)

FILE_FORMAT = 2  # 1: one serialised FAISS blob (still read); 2: one array per inverted list
MAX_DELTA_VERSIONS = 1000  # replay at most this many versions (or one per face) rather than reload
SAVE_DUTY = 20  # a domain is saved at most once per 20 times its last save's duration (<= 5% of the time)
SPILL_ABOVE_BYTES = 512 * 1024 * 1024  # a background retrain decodes larger galleries to disk, not memory
SAVER_TICK_SECONDS = 1.0
FAILED_SAVE_BACKOFF_SECONDS = 1.0  # times SAVE_DUTY: a failing save is retried every 20 s, not every tick
ABANDONED_AFTER_SECONDS = 6 * 3600
HOLDER_FILE = "holder.id"
LOCK_FILE = ".locks"
Loader = Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]
# One change: ("add" | "remove", face id, identity id, vector or None when the face no longer exists).
Change = tuple[str, int, int, np.ndarray | None]
Delta = Callable[[int, int], list[Change] | None]
Saved = Callable[[str, int], None]

_PROCESS_FILE_LOCKS: dict[str, threading.Lock] = {}  # POSIX record locks do not exclude threads of one process
_PROCESS_FILE_LOCKS_GUARD = threading.Lock()


def apply_changes(index: IdentityIndex, changes: list[Change]) -> None:
    """Replay logged changes in order on an index, each run of adds or removes in one call."""
    for op, run in itertools.groupby(changes, key=lambda change: change[0]):
        # A face added and deleted since has no vector any more; its later "remove" is then a no-op.
        batch = [change for change in run if op == "remove" or change[3] is not None]
        if not batch:
            continue
        face_ids = np.array([change[1] for change in batch], dtype=np.int64)
        if op == "remove":
            index.remove(face_ids)
        elif op == "add":
            identity_ids = np.array([change[2] for change in batch], dtype=np.int64)
            index.add(face_ids, identity_ids, np.vstack([change[3] for change in batch if change[3] is not None]))


@dataclass(frozen=True, slots=True)
class SnapshotPolicy:
    """When an index that changed is written to its file.

    ``every_changes``: after this many versions since the last snapshot. ``idle_seconds``: or once it has
    not changed for this long (None: only by count, eviction and shutdown). ``background``: a saver thread
    writes due snapshots and retrains grown indexes; otherwise the thread making the change writes at once
    (the simple mode of command-line tools and tests).
    """

    every_changes: int = 1
    idle_seconds: float | None = None
    background: bool = False


@dataclass(slots=True, eq=False)
class _Entry:
    index: IdentityIndex
    version: int  # the gallery version the index in memory is at
    saved: int | None  # the version this index was last saved at (None: never, e.g. rebuilt from SQL)
    bytes: int = 0
    changed_at: float = field(default_factory=time.monotonic)
    saved_at: float = 0.0
    save_seconds: float = 0.0
    pending: list[Callable[[IdentityIndex], object]] | None = None  # changes made during a background retrain

    @property
    def dirty(self) -> bool:
        return self.saved != self.version


def index_filename(domain: str) -> str:
    """A safe, unique file name for a domain (domains may hold any characters)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", domain)[:48].strip("._") or "domain"
    digest = hashlib.sha256(domain.encode("utf-8")).hexdigest()[:12]
    return f"{slug}-{digest}.npz"


class IndexStore:
    """Thread-safe registry of domain indexes, loaded lazily, kept in step with a version, saved by policy.

    ``memory_budget``: bytes of indexes to keep in memory; beyond it the least recently used domains are
    unloaded (saved first if they changed). None: no limit. ``compress_above``: domains with more faces are
    built as SQ8 (see :class:`IdentityIndex`).
    """

    def __init__(
        self,
        directory: Path,
        dim: int = 512,
        model_name: str = "",
        *,
        memory_budget: int | None = None,
        policy: SnapshotPolicy | None = None,
        compress_above: int | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.dim = dim
        self.model_name = model_name
        self.memory_budget = memory_budget
        self.policy = policy or SnapshotPolicy()
        self.compress_above = compress_above
        self.on_saved: Saved | None = None  # called after each file written, with its domain and version
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._bytes = 0
        self._lock = threading.Lock()
        self._domain_locks: dict[str, threading.Lock] = {}
        self._failures: dict[str, str] = {}  # "load <domain>" / "save <domain>" -> the last error
        self._holder: str | None = None
        self._lock_fd: int | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._saver: threading.Thread | None = None
        self.full_loads = 0  # loads from a file or a rebuild, as opposed to deltas (for monitoring and tests)
        self.evictions = 0
        if self.policy.background:
            self._remove_abandoned_files()
            self._saver = threading.Thread(target=self._run_saver, name="index-saver", daemon=True)
            self._saver.start()

    # ----- registry -----------------------------------------------------------------------------
    def domain_lock(self, domain: str) -> threading.Lock:
        """The lock serialising loads and changes of one domain's index."""
        with self._lock:
            return self._domain_locks.setdefault(domain, threading.Lock())

    def path_for(self, domain: str) -> Path:
        """Where a domain's index file lives."""
        return self.directory / index_filename(domain)

    def loaded_domains(self) -> dict[str, int]:
        """Domains held in memory and their faces counts."""
        with self._lock:
            return {domain: entry.index.ntotal for domain, entry in self._entries.items()}

    def loaded(self, domain: str) -> IdentityIndex | None:
        """The domain's index if it is in memory (never loads it)."""
        with self._lock:
            entry = self._entries.get(domain)
            return entry.index if entry is not None else None

    def memory_bytes(self) -> int:
        """Estimated memory of the indexes held."""
        with self._lock:
            return self._bytes

    def unsaved_domains(self) -> list[str]:
        """Domains whose index in memory is newer than its last snapshot."""
        with self._lock:
            return [domain for domain, entry in self._entries.items() if entry.dirty]

    @property
    def holder(self) -> str:
        """This index folder's id (kept in the folder): the change log is kept for each holder's files."""
        if self._holder is None:
            path = self.directory / HOLDER_FILE
            try:
                self._holder = path.read_text().strip() or None
            except OSError:
                self._holder = None
            if self._holder is None:
                made = uuid.uuid4().hex
                try:
                    self.directory.mkdir(parents=True, exist_ok=True)
                    with open(path, "x") as handle:
                        handle.write(made)
                    self._holder = made
                except FileExistsError:
                    self._holder = path.read_text().strip() or made  # another process made it first
                except OSError:
                    return made  # an unusable folder saves nothing, so it needs no record
        return self._holder

    def problems(self) -> list[str]:
        """What keeps indexes from loading or saving (empty when all is well)."""
        found = []
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if not os.access(self.directory, os.W_OK | os.X_OK):
                found.append(f"index folder {self.directory} is not writable")
        except OSError as exc:
            found.append(f"index folder {self.directory} is unusable: {exc}")
        if self._saver is not None and not self._saver.is_alive() and not self._stop.is_set():
            found.append("the index saver thread has stopped")
        with self._lock:
            found.extend(f"{what}: {error}" for what, error in self._failures.items())
        return found

    def failed_loads(self) -> list[str]:
        """Domains whose last load failed."""
        with self._lock:
            return [what.removeprefix("load ") for what in self._failures if what.startswith("load ")]

    # ----- reading ------------------------------------------------------------------------------
    def get(self, domain: str, version: int, loader: Loader, delta: Delta | None = None) -> IdentityIndex:
        """The domain's index at ``version`` or later: from memory (caught up by ``delta`` when behind),
        else from its file (caught up likewise), else rebuilt via ``loader``."""
        entry = self._touch(domain)
        if entry is not None and entry.version >= version:
            # A newer index in memory already holds every change this caller read about.
            return entry.index
        with self.domain_lock(domain):
            entry = self._entries.get(domain)
            if entry is not None and entry.version >= version:
                return entry.index
            if entry is None or not self._catch_up(entry, version, delta):
                self.full_loads += 1
                entry = self._load(domain, version, loader, delta)
                self._install(domain, entry)
            else:
                self._resize(entry)
            self._save_if_due(domain, entry)
        self._enforce_budget(keep=domain)
        return entry.index

    def read_file(self, domain: str) -> tuple[IdentityIndex, int] | None:
        """The domain's index file and the version it records, whatever that version; None if absent or damaged."""
        path = self.path_for(domain)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = data["meta"]
                file_format, file_version, dim = (int(v) for v in meta[:3])
                if file_format not in (1, FILE_FORMAT) or dim != self.dim or str(data["model"]) != self.model_name:
                    logger.info("index file %s was written for another format or model", path.name)
                    return None
                if file_format == 1:
                    index = IdentityIndex.from_legacy(
                        data["index"], data["identity_of"], int(meta[3]), self.dim, self.compress_above
                    )
                else:
                    index = IdentityIndex.read_arrays(data.__getitem__, set(data.files), self.dim, self.compress_above)
            index.auto_retrain = not self.policy.background
            return index, file_version
        except Exception:  # a damaged cache file is rebuilt, never fatal
            logger.warning("index file %s is unreadable; rebuilding", path, exc_info=True)
            return None

    def file_version(self, domain: str) -> int | None:
        """The version the domain's file records (reading only its header); None if absent or unusable."""
        try:
            with np.load(self.path_for(domain), allow_pickle=False) as data:
                meta = data["meta"]
                if int(meta[2]) != self.dim or str(data["model"]) != self.model_name:
                    return None
                return int(meta[1])
        except Exception:
            return None

    # ----- changes ------------------------------------------------------------------------------
    def update(
        self,
        domain: str,
        old_version: int,
        new_version: int,
        change: Callable[[IdentityIndex], object],
        loader: Loader,
        delta: Delta | None = None,
    ) -> None:
        """Apply ``change`` to the index at ``old_version`` and keep it as ``new_version`` (in memory).

        If the index in memory is behind ``old_version`` (another process changed the gallery too) it is
        caught up from the change log, which already holds this change; an index not in memory is loaded
        (file plus log, or SQL), so the process serving a tenant's changes keeps it warm.
        """
        with self.domain_lock(domain):
            entry = self._entries.get(domain)
            if entry is not None and entry.version >= new_version:
                return  # a later version (which includes this change) is already in place
            if entry is not None and entry.version == old_version:
                change(entry.index)
                if entry.pending is not None:
                    entry.pending.append(change)
                entry.version = new_version
                entry.changed_at = time.monotonic()
                self._resize(entry)
            elif entry is None or not self._catch_up(entry, new_version, delta):
                self.full_loads += 1
                entry = self._load(domain, new_version, loader, delta)
                self._install(domain, entry)
            else:
                self._resize(entry)
            self._save_if_due(domain, entry)
        self._enforce_budget(keep=domain)

    def rebuild(self, domain: str, version: int, loader: Loader) -> IdentityIndex:
        """Build the domain's index from ``loader`` regardless of any file, and save it now."""
        with self.domain_lock(domain):
            index = self._new_index()
            index.build(*loader())
            self._write(domain, index, version, force=True)
            self._install(domain, _Entry(index, version, saved=version, saved_at=time.monotonic()))
        self._enforce_budget(keep=domain)
        return index

    def save(self, domain: str, index: IdentityIndex, version: int) -> None:
        """Write ``index`` as the domain's file at ``version`` now and keep it in memory (e.g. a file caught up)."""
        index.compress_above = self.compress_above
        index.auto_retrain = not self.policy.background
        with self.domain_lock(domain):
            self._write(domain, index, version, force=True)
            self._install(domain, _Entry(index, version, saved=version, saved_at=time.monotonic()))
        self._enforce_budget(keep=domain)

    def flush(self) -> int:
        """Save every index that changed since its last snapshot (e.g. on shutdown); returns how many."""
        saved = 0
        with self._lock:
            dirty = [(domain, entry) for domain, entry in self._entries.items() if entry.dirty]
        for domain, entry in dirty:
            with contextlib.suppress(Exception):  # logged and shown by problems(); the log in SQL covers it
                saved += self._snapshot(domain, entry)
        return saved

    def close(self) -> None:
        """Stop the saver thread and save what changed."""
        self._stop.set()
        self._wake.set()
        if self._saver is not None:
            self._saver.join(timeout=120)
            if self._saver.is_alive():
                logger.warning("the index saver is still busy; saving the changed indexes alongside it")
        self.flush()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ----- internals: loading -------------------------------------------------------------------
    def _new_index(self) -> IdentityIndex:
        index = IdentityIndex(self.dim, self.compress_above)
        index.auto_retrain = not self.policy.background  # the saver thread retrains off the request path
        return index

    def _touch(self, domain: str) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(domain)
            if entry is not None:
                self._entries.move_to_end(domain)
            return entry

    def _load(self, domain: str, version: int, loader: Loader, delta: Delta | None) -> _Entry:
        """The domain's index at ``version`` from its file (caught up by ``delta``), else from ``loader``."""
        try:
            found = self.read_file(domain)
            if found is not None and found[1] <= version:
                entry = _Entry(found[0], found[1], saved=found[1], saved_at=time.monotonic())
                if entry.version == version or self._catch_up(entry, version, delta):
                    self._failures.pop(f"load {domain}", None)
                    return entry
            index = self._new_index()
            index.build(*loader())
        except Exception as exc:
            self._failures[f"load {domain}"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise
        self._failures.pop(f"load {domain}", None)
        if version == 0 and index.ntotal == 0:
            # A domain that never had a gallery (a misspelt one, a tenant with nobody enrolled): nothing to save.
            return _Entry(index, version, saved=version)
        logger.info("rebuilt index for domain %r at version %d (%d faces)", domain, version, index.ntotal)
        return _Entry(index, version, saved=None)

    def _catch_up(self, entry: _Entry, version: int, delta: Delta | None) -> bool:
        """Bring an index forward by replaying logged changes; False if that is not possible."""
        limit = max(MAX_DELTA_VERSIONS, entry.index.ntotal)  # replaying beats reloading until then
        if delta is None or not entry.version < version <= entry.version + limit:
            return False
        changes = delta(entry.version, version)
        if changes is None:
            return False
        apply_changes(entry.index, changes)
        if entry.pending is not None:
            entry.pending.append(functools.partial(apply_changes, changes=changes))
        entry.version = version
        entry.changed_at = time.monotonic()
        return True

    def _install(self, domain: str, entry: _Entry) -> None:
        entry.bytes = entry.index.memory_bytes()
        with self._lock:
            old = self._entries.pop(domain, None)
            self._bytes += entry.bytes - (old.bytes if old is not None else 0)
            self._entries[domain] = entry

    def _resize(self, entry: _Entry) -> None:
        size = entry.index.memory_bytes()
        with self._lock:
            self._bytes += size - entry.bytes
            entry.bytes = size

    def _enforce_budget(self, keep: str) -> None:
        """Unload least recently used domains (never ``keep``) until the indexes fit the memory budget."""
        if self.memory_budget is None:
            return
        evicted = False
        while True:
            with self._lock:
                if self._bytes <= self.memory_budget:
                    break
                victims = [domain for domain in itertools.islice(self._entries, 64) if domain != keep]
            if not victims or not any(self._evict(victim) for victim in victims):
                break
            evicted = True
        if evicted:
            _return_freed_memory()

    def _evict(self, domain: str) -> bool:
        lock = self.domain_lock(domain)
        if not lock.acquire(blocking=False):
            return False  # busy (loading or changing): try the next one
        try:
            entry = self._entries.get(domain)
            if entry is None:
                return False
            if entry.dirty:
                # Not required for correctness (SQL and its log hold every change) but it lets the log
                # be pruned and spares the next load a replay.
                with contextlib.suppress(Exception):
                    self._snapshot(domain, entry)
            with self._lock:
                if self._entries.get(domain) is entry:
                    del self._entries[domain]
                    self._bytes -= entry.bytes
            self._failures.pop(f"save {domain}", None)  # nothing of it is left to save
            self.evictions += 1
            logger.debug("unloaded index of domain %r (%d faces)", domain, entry.index.ntotal)
            return True
        finally:
            lock.release()

    # ----- internals: saving --------------------------------------------------------------------
    def _save_if_due(self, domain: str, entry: _Entry) -> None:
        """Write-through mode saves a due snapshot now (the domain lock is held); background mode wakes the saver."""
        if not self._due(entry, time.monotonic(), by_count_only=True):
            return
        if self.policy.background:
            self._wake.set()
        else:
            with contextlib.suppress(Exception):  # reported by problems(); the next change tries again
                self._snapshot(domain, entry)

    def _due(self, entry: _Entry, now: float, by_count_only: bool = False) -> bool:
        if not entry.dirty:
            return False
        if entry.saved is None or entry.version - entry.saved >= self.policy.every_changes:
            due = True
        else:
            idle = self.policy.idle_seconds
            due = not by_count_only and idle is not None and now - entry.changed_at >= idle
        # A large index is not rewritten back to back: at most SAVE_DUTY of the time goes to its saves.
        return due and (not self.policy.background or now - entry.saved_at >= SAVE_DUTY * entry.save_seconds)

    def _snapshot(self, domain: str, entry: _Entry) -> bool:
        """Write the entry's index as a snapshot at the version it has now; True if a file was written."""
        version = entry.version
        started = time.monotonic()
        try:
            written = self._write(domain, entry.index, version, force=False)
        except SnapshotInterruptedError:
            return False  # retrained meanwhile: the next round saves the new one
        except Exception as exc:
            self._failures[f"save {domain}"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            logger.warning("could not save the index of domain %r: %s", domain, exc)
            entry.saved_at = time.monotonic()
            entry.save_seconds = max(entry.save_seconds, FAILED_SAVE_BACKOFF_SECONDS)
            raise
        self._failures.pop(f"save {domain}", None)
        entry.saved = max(version, entry.saved or 0)
        entry.saved_at = time.monotonic()
        if written:
            entry.save_seconds = entry.saved_at - started
            logger.debug("saved index of domain %r at version %d in %.3f s", domain, version, entry.save_seconds)
        return written

    def _write(self, domain: str, index: IdentityIndex, version: int, *, force: bool) -> bool:
        """Write ``index`` as the domain's file at ``version`` (atomically); unless ``force``, skip it when the
        file already holds that version or a later one (another process sharing the folder wrote it)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(domain)
        with self._file_lock(domain):
            if not force:
                current = self.file_version(domain)
                if current is not None and current >= version:
                    return False
            # Write beside the target, fsync, then rename: readers see the old file or the new one, never half.
            fd, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=path.name, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:

                        def write(name: str, array: np.ndarray) -> None:
                            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                                np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)

                        write("meta", np.array([FILE_FORMAT, version, self.dim], dtype=np.int64))
                        write("model", np.array(self.model_name))
                        index.write_arrays(write)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp_name, path)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
            _fsync_directory(self.directory)
            if self.on_saved is not None:
                try:
                    self.on_saved(domain, version)
                except Exception:  # the file is good; only pruning the change log waits for the next save
                    logger.warning("could not record the snapshot of domain %r", domain, exc_info=True)
        return True

    @contextlib.contextmanager
    def _file_lock(self, domain: str) -> Iterator[None]:
        """Exclusive right to write the domain's file, among threads and processes sharing the folder."""
        path = str(self.path_for(domain).resolve())
        with _PROCESS_FILE_LOCKS_GUARD:
            thread_lock = _PROCESS_FILE_LOCKS.setdefault(path, threading.Lock())
        with thread_lock:
            if self._lock_fd is None:
                self._lock_fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
            # One byte of a shared lock file per domain (a record lock): no lock file per domain.
            offset = int(hashlib.sha256(path.encode()).hexdigest()[:15], 16)
            fcntl.lockf(self._lock_fd, fcntl.LOCK_EX, 1, offset)
            try:
                yield
            finally:
                fcntl.lockf(self._lock_fd, fcntl.LOCK_UN, 1, offset)

    def _remove_abandoned_files(self) -> None:
        """Delete temporary files a crashed process left behind (old enough that no save is still writing them)."""
        cutoff = time.time() - ABANDONED_AFTER_SECONDS
        with contextlib.suppress(OSError):
            for leftover in self.directory.glob("*.tmp"):
                with contextlib.suppress(OSError):
                    if leftover.stat().st_mtime < cutoff:
                        leftover.unlink()
                        logger.info("removed %s, left by an interrupted save", leftover.name)

    # ----- internals: the saver thread ----------------------------------------------------------
    def _run_saver(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(SAVER_TICK_SECONDS)
            self._wake.clear()
            if self._stop.is_set():
                break
            now = time.monotonic()
            with self._lock:
                entries = list(self._entries.items())
            for domain, entry in entries:
                if self._stop.is_set():
                    break
                try:
                    if entry.index.needs_retrain():
                        self._retrain(domain, entry)
                    elif self._due(entry, now):
                        self._snapshot(domain, entry)
                except OSError:
                    pass  # a failed save was logged and is shown by problems(); it is retried later
                except Exception:
                    logger.exception("index maintenance failed for domain %r", domain)

    def _retrain(self, domain: str, entry: _Entry) -> None:
        """Build a retrained index off the request path; changes made meanwhile are replayed on it."""
        with self.domain_lock(domain):
            if self._entries.get(domain) is not entry:
                return
            spill = self.directory if entry.index.ntotal * self.dim * 4 > SPILL_ABOVE_BYTES else None
            contents = entry.index.contents(spill_dir=spill)
            entry.pending = []
        started = time.monotonic()
        fresh = self._new_index()
        try:
            fresh.build(*contents)
        finally:
            del contents
        with self.domain_lock(domain):
            pending, entry.pending = entry.pending or [], None
            if self._entries.get(domain) is not entry:
                return
            for change in pending:
                change(fresh)
            entry.index = fresh
            entry.saved = None  # the file holds the old lists
            self._resize(entry)
        logger.info(
            "retrained index of domain %r: %d faces, %s, nlist %d, nprobe %d (%.1f s)",
            domain,
            fresh.ntotal,
            fresh.kind,
            fresh.nlist,
            fresh.nprobe,
            time.monotonic() - started,
        )
        self._wake.set()


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable (the directory entry), where the platform allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def _return_freed_memory() -> None:
    """Hand memory freed by unloaded indexes back to the system (glibc keeps small freed blocks otherwise)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
