"""The VectorIndex protocol: the seam every vector index of a store implements.

A vector index is a *view* of the stored vectors: the backend's tables are the truth, and the
index is stamped with the change-log ``seq`` it covers, caught up from the log, and rebuilt
from the tables whenever anything about it is in doubt. Each store has one, chosen once
where the store is assembled (``loomdb.index.open_index``):

- ``VectorIndexView`` (``view.py``): faiss HNSW indexes, one per (space, tenant), held in
  memory and saved as files next to the store (SQLite).
- ``PgvectorIndex`` (``pgvector.py``): the HNSW indexes PostgreSQL keeps inside the vectors
  table; the backend searches them itself, and every committed write is already indexed.

A further tier (Milvus) implements the same methods. Scores are always those of
``loomdb.similarity.exact_scores`` (higher is better), whatever the index approximates.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..filters import FilterNode
from ..model import Hit, VectorSpace

__all__ = ["IndexStats", "Labels", "Matrix", "Progress", "VectorIndex"]

Labels = npt.NDArray[np.int64]
Matrix = npt.NDArray[np.float32]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class IndexStats:
    """The state of the index of one (space, tenant).

    Attributes:
        size: live entries (equal to the stored vectors once caught up).
        dead: removed entries still taking room until the index is compacted or rebuilt.
        bytes: the index's approximate footprint; 0 where the database keeps it and does
            not tell (pgvector's index is one per space, shared by the tenants).
        seq: the change-log ``seq`` the index covers.
    """

    size: int
    dead: int
    bytes: int
    seq: int


class VectorIndex(ABC):
    """The vector index of one store: every (space, tenant) in it. Thread-safe.

    Labels are the backend's vector labels: integers that only grow and are never reused, so
    an entry can never point at the wrong vector.
    """

    # -- contents --------------------------------------------------------------------------

    @abstractmethod
    def add(self, space: VectorSpace, tenant: str, labels: Labels, vectors: Matrix) -> None:
        """Index ``vectors`` (float32 rows) under ``labels`` (ascending, each larger than every
        label the index holds; labels it already holds are skipped).

        ``catch_up`` calls it with the vectors the change log added; the ``seq`` stamp does
        not move. An index that lives in the backend's tables (pgvector) was updated by the
        write that stored the vectors, and does nothing.
        """

    @abstractmethod
    def remove(self, space: VectorSpace, tenant: str, labels: Labels) -> None:
        """Drop the entries of ``labels`` from searches; labels not in the index are ignored.

        Like ``add``: what ``catch_up`` calls for removed vectors; a no-op where the
        backend's own delete already did it.
        """

    # -- search ----------------------------------------------------------------------------

    @abstractmethod
    def search(
        self, space: VectorSpace, tenant: str, query: Matrix, k: int,
        where: FilterNode | None = None, exact: bool = False,
    ) -> list[Hit]:
        """The ``k`` nodes of (space, tenant) nearest to ``query`` (validated, one row), best
        first, each scored by ``exact_scores`` (``Hit.scores == {"vector": score}``); ties
        are broken by ascending label.

        Filtered search: with ``where``, only vectors whose node matches it are candidates.
        An index that cannot evaluate node filters itself searches with the allow-list of
        labels ``Backend.vector_labels`` gives (``loomdb.index.search`` does this for any
        index that takes an allow-list); pgvector pushes the filter into its scan.
        ``exact`` asks for brute force. Otherwise results may be approximate, but
        ``min(k, matches)`` hits always come back. Changes committed before the call are
        seen (the index catches up first); inside a transaction, it may answer as of the
        last commit.
        """

    # -- the seq stamp: catch up, load and save --------------------------------------------

    @abstractmethod
    def catch_up(self, space: VectorSpace, tenant: str) -> int:
        """Apply every committed change the index of (space, tenant) does not cover yet
        (loading it first if needed), rebuilding it instead when the log no longer reaches
        back to its stamp. Returns the ``seq`` it now covers. Inside a transaction it does
        not advance (it would index changes a rollback could take back)."""

    @abstractmethod
    def load(self, space: VectorSpace, tenant: str) -> int:
        """Make the index of (space, tenant) ready without catching it up: the saved one if it
        is usable (present, readable, built for these space settings, not ahead of the
        store), otherwise one built from the stored vectors. Returns the ``seq`` it covers."""

    @abstractmethod
    def save(self) -> None:
        """Persist every index with changes (caught up first), record each one's stamp with
        ``Backend.record_index_stamp``, then purge the change log up to the oldest stamp.

        A crash at any point leaves either the old or the new saved index, never a torn one,
        and the log still reaches back to whichever is there. Nothing is saved inside a
        transaction, nor by an index that keeps no files of its own; one that the database
        keeps current at every commit stamps itself with the current ``seq``."""

    # -- maintenance -----------------------------------------------------------------------

    @abstractmethod
    def rebuild(
        self, spaces: list[VectorSpace], progress: Progress | None = None
    ) -> dict[tuple[str, str], int]:
        """Rebuild, from the stored vectors, the index of every tenant of ``spaces``, and
        save it. Returns each rebuilt index's size by (space name, tenant); ``{}`` when the
        database maintains its indexes itself. ``progress(done, total)`` follows each build."""

    @abstractmethod
    def warm_up(self, spaces: list[VectorSpace]) -> int:
        """Load (and catch up) every index of ``spaces`` and read into memory what queries
        will touch, so the first ones run at full speed. Returns the bytes read (0 when
        there is nothing of its own to read)."""

    @abstractmethod
    def stats(self, space: VectorSpace, tenant: str) -> IndexStats:
        """Size, dead entries, bytes and ``seq`` of the index of (space, tenant), caught up
        with every committed change (outside a transaction)."""

    @abstractmethod
    def check(self, spaces: list[VectorSpace]) -> list[str]:
        """Problems found comparing the index of every tenant of ``spaces`` with the stored
        vectors (an entry for a vector the store lacks, or a vector the index misses), one
        line each; ``[]`` when they agree. ``Database.check`` reports them."""
