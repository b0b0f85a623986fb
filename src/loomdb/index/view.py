"""VectorIndexView: the faiss ``VectorIndex``, one HNSW index per (space, tenant) kept in step
with the backend's log.

An index is loaded from disk (or built from the stored vectors) the first time it is used,
then caught up from the change log before every search. ``save`` writes each changed index as
a new generation and records its stamp in the backend, which lets the backend purge the log up
to the oldest stamp and no further. Anything wrong with a saved index (missing, unreadable,
damaged, built for other settings or for another store, log purged past it, stamp ahead of the
store) means: rebuild it; what is checked when, and why, is in ``integrity.py``. ``check``
rebuilds an index it finds wrong, so it is never served again.

Saving can fail (a full disk, an unwritable folder): that is ``BackendUnavailable``, and the
store loses nothing, since the log still reaches back to the last saved index. Temp files of
a save killed midway are removed when the store is next opened for writing.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from ..config import IndexSettings
from ..errors import BackendUnavailable, CorruptStore
from ..filters import FilterNode
from ..model import Hit, VectorSpace
from ..storage.base import Backend, Change
from .base import IndexStats, Labels, Matrix, Progress, VectorIndex
from .hnsw import HnswIndex
from .integrity import remove_orphan_temps
from .search import allow_list_search

__all__ = ["VectorIndexView"]

log = logging.getLogger(__name__)
BATCH = 50_000  # vectors read from the backend at a time while building or catching up
CHECK_SAMPLE = 1_000  # stored vectors ``check`` compares with the index's entries


class VectorIndexView(VectorIndex):
    """The faiss HNSW indexes of one store. ``directory`` is ``None`` for memory stores (its
    indexes live in memory only and ``save`` does nothing). Opened for writing, it removes the
    temp files of saves a killed process left in ``directory``."""

    def __init__(self, backend: Backend, directory: Path | None, settings: IndexSettings,
                 *, read_only: bool = False) -> None:
        self.backend = backend
        self.directory = directory
        self.settings = settings
        self._indexes: dict[tuple[str, str], HnswIndex] = {}
        self._saved: dict[tuple[str, str], int] = {}
        self._store_id: str | None = None
        self.lock = threading.RLock()
        if directory is not None and not read_only:
            remove_orphan_temps(directory)  # the lock is ours: no save of another is running

    @property
    def store_id(self) -> str | None:
        """The identity of the store, stamped on its saved indexes (one copied from another
        store is not loaded)."""
        if self._store_id is None:
            self._store_id = self.backend.store_id()
        return self._store_id

    def _path(self, space: str, tenant: str) -> Path | None:
        return None if self.directory is None else self.directory / space / tenant

    def get(self, space: VectorSpace, tenant: str) -> HnswIndex:
        """The index of (space, tenant), caught up with every committed change.

        Inside a transaction the index is not advanced (it would see uncommitted vectors that
        a rollback could take back); it then answers as of the last commit.
        """
        with self.lock:
            index = self._loaded(space, tenant)
            if not self.backend.in_transaction():
                index = self._catch_up(index, tenant)
            return index

    def _loaded(self, space: VectorSpace, tenant: str) -> HnswIndex:
        """The index of (space, tenant) as it is, loaded or built first if needed."""
        key = (space.name, tenant)
        index = self._indexes.get(key)
        if index is None or index.space != space:
            index = self._indexes[key] = self._load_or_build(space, tenant)
        return index

    # -- the VectorIndex protocol ----------------------------------------------------------

    def add(self, space: VectorSpace, tenant: str, labels: Labels, vectors: Matrix) -> None:
        with self.lock:
            self._loaded(space, tenant).add(labels, vectors)

    def remove(self, space: VectorSpace, tenant: str, labels: Labels) -> None:
        with self.lock:
            self._loaded(space, tenant).remove(labels)

    def search(
        self, space: VectorSpace, tenant: str, query: Matrix, k: int,
        where: FilterNode | None = None, exact: bool = False,
    ) -> list[Hit]:
        def candidates(fetch: int, allowed: Labels | None) -> tuple[Labels, Matrix, int]:
            with self.lock:
                index = self.get(space, tenant)
                available = len(index) if allowed is None else len(allowed)
                labels, scores = index.search(query, fetch, allowed)
            return labels, scores, available

        return allow_list_search(self.backend, self.settings, tenant, space, query, k, where,
                                 exact, candidates)

    def catch_up(self, space: VectorSpace, tenant: str) -> int:
        return self.get(space, tenant).seq

    def load(self, space: VectorSpace, tenant: str) -> int:
        with self.lock:
            return self._loaded(space, tenant).seq

    def stats(self, space: VectorSpace, tenant: str) -> IndexStats:
        with self.lock:
            index = self.get(space, tenant)
            return IndexStats(size=len(index), dead=int(index.dead.sum()),
                              bytes=index.nbytes, seq=index.seq)

    def check(self, spaces: list[VectorSpace]) -> list[str]:
        """Each index is checked whole: its saved file's full digest, its labels against the
        stored ones, and a sample of stored vectors against its entries. One found wrong is
        rebuilt from the stored vectors (and saved at the next checkpoint)."""
        problems = []
        for space in spaces:
            for tenant in self.backend.vector_tenants(space.name):
                problem = self._problem(space, tenant)
                if problem is not None:
                    with self.lock:
                        self.build(space, tenant)
                    problems.append(f"index {space.name}/{tenant} {problem}; rebuilt from the "
                                    "stored vectors")
        return problems

    def _problem(self, space: VectorSpace, tenant: str) -> str | None:
        """What is wrong with the index of (space, tenant), or ``None``."""
        with self.lock:
            index = self.get(space, tenant)
            try:
                index.verify_file()
            except CorruptStore as exc:
                return f"is damaged ({exc})"
            live = np.sort(index.labels[~index.dead])
        stored = self.backend.vector_labels(tenant, space.name, None)
        if not np.array_equal(live, stored):
            return f"holds {len(live)} vectors, the store {len(stored)}"
        sample = np.random.default_rng().choice(stored, min(len(stored), CHECK_SAMPLE),
                                                replace=False)
        labels, vectors = self.backend.vectors_by_label(tenant, space.name,
                                                        np.sort(sample).tolist())
        with self.lock:
            wrong = index.mismatched(labels, vectors)
        if len(wrong):
            return (f"differs from the stored vectors at {len(wrong)} of {len(labels)} sampled "
                    f"labels (e.g. {int(wrong[0])})")
        return None

    # -- loading, building and catching up -------------------------------------------------

    def _load_or_build(self, space: VectorSpace, tenant: str) -> HnswIndex:
        path = self._path(space.name, tenant)
        if path is not None and (path / "CURRENT").exists():
            try:
                index = HnswIndex.load(path, space, self.settings, self.store_id)
                if index.seq <= self.backend.seq():
                    self._saved[(space.name, tenant)] = index.seq
                    return index
                log.warning("vector index %s is ahead of the store; rebuilding", path)
            except CorruptStore as exc:
                log.warning("%s; rebuilding", exc)
        return self.build(space, tenant)

    def build(
        self, space: VectorSpace, tenant: str, progress: Progress | None = None
    ) -> HnswIndex:
        """A fresh index from every stored vector of (space, tenant).

        ``progress(done, total)`` is called after each batch, for long builds.
        """
        seq = self.backend.seq()
        index = HnswIndex(space, self.settings)
        total = self.backend.stats(tenant)["vectors"].get(space.name, 0) if progress else 0
        for labels, vectors in self.backend.scan_vectors(tenant, space.name, batch=BATCH):
            index.add(labels, vectors)
            if progress is not None:
                progress(len(index.labels), max(total, len(index.labels)))
        index.seq = seq
        self._indexes[(space.name, tenant)] = index
        self._saved.pop((space.name, tenant), None)  # replaces the saved one, even at its seq
        return index

    def _catch_up(self, index: HnswIndex, tenant: str) -> HnswIndex:
        current = self.backend.seq()
        if index.seq >= current:
            return index
        try:
            changes = self.backend.vector_changes(tenant, index.space.name, index.seq)
        except CorruptStore:
            return self.build(index.space, tenant)
        try:
            self._apply(index, tenant, changes)
        except CorruptStore as exc:  # its saved file found damaged, or labels gone backwards
            log.warning("vector index %s/%s: %s; rebuilding", index.space.name, tenant, exc)
            return self.build(index.space, tenant)
        index.seq = max([current] + [c.seq for c in changes])
        if index.dead_ratio > self.settings.compact_ratio or index.needs_retraining:
            return self.build(index.space, tenant)
        return index

    def _apply(self, index: HnswIndex, tenant: str, changes: list[Change]) -> None:
        """Tombstone the removed vectors of ``changes``, add the added ones."""
        deleted = [c.label for c in changes if c.op == "del"]
        added = [c.label for c in changes if c.op == "add"]
        if deleted:
            index.remove(np.asarray(deleted, dtype=np.int64))
        for start in range(0, len(added), BATCH):
            labels, vectors = self.backend.vectors_by_label(
                tenant, index.space.name, added[start : start + BATCH]
            )
            index.add(labels, vectors)

    def save(self) -> None:
        """Bring every index with pending changes up to date, persist it, then purge the log.

        Indexes never used in this session are built or caught up too, so that a bulk load
        followed by ``close`` leaves an index the next open can use at once.
        """
        if self.directory is None or self.backend.in_transaction():
            return
        with self.lock:
            for space in self.backend.list_spaces():
                tenants = set(self.backend.vector_tenants(space.name))
                tenants |= {t for (s, t) in self._indexes if s == space.name}
                for tenant in sorted(tenants):
                    if (space.name, tenant) in self._indexes or self._pending(space, tenant):
                        self._save_one(self.get(space, tenant), tenant)
            self.backend.purge_log()

    def _pending(self, space: VectorSpace, tenant: str) -> bool:
        """Whether the saved index of (space, tenant) misses changes (or does not exist)."""
        path = self._path(space.name, tenant)
        assert path is not None
        try:
            stamp = HnswIndex.read_stamp(path)
            return bool(self.backend.vector_changes(tenant, space.name, stamp))
        except CorruptStore:
            return True

    def _save_one(self, index: HnswIndex, tenant: str) -> None:
        key = (index.space.name, tenant)
        if self._saved.get(key) == index.seq:
            return
        path = self._path(index.space.name, tenant)
        assert path is not None
        try:
            index.save(path, self.store_id)
        except (OSError, RuntimeError) as exc:  # faiss reports write errors as RuntimeError
            raise BackendUnavailable(
                f"cannot save the vector index of {index.space.name}/{tenant} in {path}: {exc}; "
                "no data is lost (it is caught up or rebuilt from the store when next opened)"
            ) from exc
        self.backend.record_index_stamp(tenant, index.space.name, index.seq)
        self._saved[key] = index.seq

    # -- maintenance -----------------------------------------------------------------------

    def rebuild(
        self, spaces: list[VectorSpace], progress: Progress | None = None
    ) -> dict[tuple[str, str], int]:
        sizes = {}
        with self.lock:
            for space in spaces:
                for tenant in self.backend.vector_tenants(space.name):
                    sizes[(space.name, tenant)] = len(self.build(space, tenant, progress))
        self.save()
        return sizes

    def warm_up(self, spaces: list[VectorSpace]) -> int:
        """The index files, and for quantized spaces the stored vectors their results are
        re-scored from (read in label order, i.e. sequentially). An index file found damaged
        on the way is rebuilt."""
        total = 0
        with self.lock:
            for space in spaces:
                for tenant in self.backend.vector_tenants(space.name):
                    total += self._warm_up_one(space, tenant)
                    if space.quantization != "f32":
                        total += sum(v.nbytes for _, v in
                                     self.backend.scan_vectors(tenant, space.name, BATCH))
        return total

    def _warm_up_one(self, space: VectorSpace, tenant: str) -> int:
        try:
            return self.get(space, tenant).warm_up()
        except CorruptStore as exc:
            log.warning("vector index %s/%s: %s; rebuilding", space.name, tenant, exc)
            self.build(space, tenant)
            return 0
