"""PgvectorIndex: the ``VectorIndex`` of a PostgreSQL store, kept by the database itself.

pgvector's HNSW indexes live inside the ``vectors`` table (one partial index per space, see
``loomdb.storage.postgres.vectors``), so the write that stores a vector indexes it, in the
same transaction: there is nothing to add, remove, catch up, load, warm up or rebuild here,
and no file to save. Searches delegate to the backend's ``search_vectors``, which pushes
filters into pgvector's iterative scan and re-scores exactly. The change log is covered at
every commit, so a save stamps every index with the current ``seq`` and purges the log.
"""

from __future__ import annotations

from ..filters import FilterNode
from ..model import Hit, VectorSpace
from ..storage.base import Backend
from .base import IndexStats, Labels, Matrix, Progress, VectorIndex

__all__ = ["PgvectorIndex"]


class PgvectorIndex(VectorIndex):
    """The indexes PostgreSQL keeps for ``backend`` (one with ``native_vectors``)."""

    def __init__(self, backend: Backend, *, read_only: bool = False) -> None:
        self.backend = backend
        self.read_only = read_only

    def add(self, space: VectorSpace, tenant: str, labels: Labels, vectors: Matrix) -> None:
        """Nothing to do: storing the vectors indexed them."""

    def remove(self, space: VectorSpace, tenant: str, labels: Labels) -> None:
        """Nothing to do: deleting the vectors took them out of the index."""

    def search(
        self, space: VectorSpace, tenant: str, query: Matrix, k: int,
        where: FilterNode | None = None, exact: bool = False,
    ) -> list[Hit]:
        found = self.backend.search_vectors(tenant, space, query, k, where, exact)
        return [Hit.of(node, score, {"vector": score}) for node, score in found]

    def catch_up(self, space: VectorSpace, tenant: str) -> int:
        return self.backend.seq()

    def load(self, space: VectorSpace, tenant: str) -> int:
        return self.backend.seq()

    def save(self) -> None:
        if self.read_only or self.backend.in_transaction():
            return
        seq = self.backend.seq()
        for space in self.backend.list_spaces():
            for tenant in self.backend.vector_tenants(space.name):
                self.backend.record_index_stamp(tenant, space.name, seq)
        self.backend.purge_log()

    def rebuild(
        self, spaces: list[VectorSpace], progress: Progress | None = None
    ) -> dict[tuple[str, str], int]:
        return {}  # PostgreSQL maintains its indexes (REINDEX is the DBA's)

    def warm_up(self, spaces: list[VectorSpace]) -> int:
        return 0  # the pages are the database's, in its shared buffers

    def stats(self, space: VectorSpace, tenant: str) -> IndexStats:
        size = self.backend.stats(tenant)["vectors"].get(space.name, 0)
        return IndexStats(size=int(size), dead=0, bytes=0, seq=self.backend.seq())

    def check(self, spaces: list[VectorSpace]) -> list[str]:
        return []  # the index is the table's: ``Backend.check_integrity`` covers it
