"""Per-domain indexes in memory, persisted atomically under the index folder.

Each file records the gallery version it was built at. The caller passes the version it read from
SQL (the source of truth); a file or in-memory index at another version is stale and is rebuilt
from the vectors the caller's loader returns.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.search.index import IdentityIndex

logger = logging.getLogger(__name__)

FILE_FORMAT = 1
MAX_DELTA_VERSIONS = 1000  # beyond this many versions behind, reloading the file is cheaper
Loader = Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]
# One change: ("add" | "remove", face id, identity id, vector or None when the face no longer exists).
Change = tuple[str, int, int, np.ndarray | None]
Delta = Callable[[int, int], list[Change] | None]


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


@dataclass(slots=True)
class _Entry:
    index: IdentityIndex
    version: int


def index_filename(domain: str) -> str:
    """A safe, unique file name for a domain (domains may hold any characters)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", domain)[:48].strip("._") or "domain"
    digest = hashlib.sha256(domain.encode("utf-8")).hexdigest()[:12]
    return f"{slug}-{digest}.npz"


class IndexStore:
    """Thread-safe registry of domain indexes, loaded lazily and kept in step with a version."""

    def __init__(self, directory: Path, dim: int = 512, model_name: str = "") -> None:
        self.directory = Path(directory)
        self.dim = dim
        self.model_name = model_name
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._domain_locks: dict[str, threading.Lock] = {}
        self.full_loads = 0  # loads from a file or a rebuild, as opposed to deltas (for monitoring and tests)

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

    def get(self, domain: str, version: int, loader: Loader, delta: Delta | None = None) -> IdentityIndex:
        """The domain's index at ``version``: from memory (caught up by ``delta`` when a little behind),
        else from its file, else rebuilt via ``loader``."""
        entry = self._entries.get(domain)
        if entry is not None and entry.version == version:
            return entry.index
        with self.domain_lock(domain):
            entry = self._entries.get(domain)
            if entry is not None and entry.version == version:
                return entry.index
            if entry is not None and self._catch_up(entry, version, delta):
                return entry.index
            self.full_loads += 1
            found = self.read_file(domain)
            if found is not None and found[1] <= version:
                entry = _Entry(*found)
                if entry.version == version or self._catch_up(entry, version, delta):
                    with self._lock:
                        self._entries[domain] = entry
                    return entry.index
            index = IdentityIndex(self.dim)
            index.build(*loader())
            self._write(domain, index, version)
            logger.info("rebuilt index for domain %r at version %d (%d faces)", domain, version, index.ntotal)
            with self._lock:
                self._entries[domain] = _Entry(index, version)
            return index

    def rebuild(self, domain: str, version: int, loader: Loader) -> IdentityIndex:
        """Build the domain's index from ``loader`` regardless of any file, and persist it."""
        with self.domain_lock(domain):
            index = IdentityIndex(self.dim)
            index.build(*loader())
            self._write(domain, index, version)
            with self._lock:
                self._entries[domain] = _Entry(index, version)
            return index

    def save(self, domain: str, index: IdentityIndex, version: int) -> None:
        """Persist ``index`` as the domain's file at ``version`` and keep it in memory (e.g. a file caught up)."""
        with self.domain_lock(domain):
            self._write(domain, index, version)
            with self._lock:
                self._entries[domain] = _Entry(index, version)

    def _catch_up(self, entry: _Entry, version: int, delta: Delta | None) -> bool:
        """Bring an in-memory index forward by replaying logged changes; False if that is not possible."""
        if delta is None or not entry.version < version <= entry.version + MAX_DELTA_VERSIONS:
            return False
        changes = delta(entry.version, version)
        if changes is None:
            return False
        apply_changes(entry.index, changes)
        entry.version = version
        return True

    def update(
        self,
        domain: str,
        old_version: int,
        new_version: int,
        change: Callable[[IdentityIndex], object],
        loader: Loader,
        delta: Delta | None = None,
    ) -> None:
        """Apply ``change`` to the index at ``old_version`` and store it as ``new_version``.

        If the index in memory is behind ``old_version`` (another process changed the gallery too) it is
        caught up from the change log, which already holds this change, or else rebuilt from ``loader``.
        """
        with self.domain_lock(domain):
            entry = self._entries.get(domain)
            if entry is not None and entry.version >= new_version:
                return  # a later version (which includes this change) is already in place
            if entry is not None and entry.version == old_version:
                change(entry.index)
                index = entry.index
            elif entry is not None and self._catch_up(entry, new_version, delta):
                index = entry.index
            else:
                self.full_loads += 1
                index = IdentityIndex(self.dim)
                index.build(*loader())
            self._write(domain, index, new_version)
            with self._lock:
                self._entries[domain] = _Entry(index, new_version)

    def read_file(self, domain: str) -> tuple[IdentityIndex, int] | None:
        """The domain's index file and the version it records, whatever that version; None if absent or damaged."""
        path = self.path_for(domain)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                file_format, file_version, dim, trained = (int(v) for v in data["meta"][:4])
                if (file_format, dim, str(data["model"])) != (FILE_FORMAT, self.dim, self.model_name):
                    logger.info("index file %s was written for another format or model", path.name)
                    return None
                index = IdentityIndex.from_bytes(data["index"], data["identity_of"], trained, self.dim)
                return index, file_version
        except Exception:  # a damaged cache file is rebuilt, never fatal
            logger.warning("index file %s is unreadable; rebuilding", path, exc_info=True)
            return None

    # ----- files ----------------------------------------------------------------------------------
    def _write(self, domain: str, index: IdentityIndex, version: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        blob, identity_of, trained = index.to_bytes()
        buffer = io.BytesIO()
        np.savez(
            buffer,
            meta=np.array([FILE_FORMAT, version, self.dim, trained], dtype=np.int64),
            model=np.array(self.model_name),
            index=blob,
            identity_of=identity_of,
        )
        path = self.path_for(domain)
        # Write beside the target, fsync, then rename: readers see the old file or the new one, never half.
        fd, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(buffer.getbuffer())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
