"""The Backend protocol: what every storage backend must do, and exactly how.

A backend stores nodes, edges, vector spaces, vectors, full text, the weaver's jobs and a
change log, and is the only source of truth; the ANN index is a view rebuilt from it
(``loomdb.index``). The protocol is split by concern, one small ABC each, so that a new
backend's author sees exactly what to write, one part at a time:

- :class:`NodeStore`   nodes: write, read, filter, scan
- :class:`EdgeStore`   edges and the graph primitive ``adjacent`` (+ optional native walks)
- :class:`VectorStore` vector spaces, vectors by label, the change log the index view reads
  (+ optional native vector search)
- :class:`TextSearch`  full-text search over node text
- :class:`JobQueue`    the weaver's durable jobs
- :class:`Admin`       lifecycle, transactions, ``seq``, tenants, tool metadata, statistics,
  integrity

:class:`Backend` is their composition; the rest of loomdb types against it.

Rules every part follows:

- **Tenancy**: every method that takes ``tenant`` reads and writes that tenant's rows only.
  The few without one (spaces, jobs, ``seq``, meta, the log upkeep) are store-wide.
- **Change log**: every write appends to the change log, whose ``seq`` only grows.
- **Ids and labels**: ids are the user's string ids; vector *labels* are integers the
  backend assigns, unique for the life of the store and never reused (a vector that is
  replaced gets a new label), so that index entries can never point at the wrong vector.
- **Missing ids**: reads and deletes skip node ids that do not exist; a write that needs a
  node (an update, an edge's endpoints, a vector's owner) raises ``NotFound``.
- **Scores** are higher-is-better everywhere (similarities, text ranks, edge weights).
- **Errors**: backends raise only ``loomdb.errors`` types; driver errors are translated at
  the boundary (``sqlite/errors.py``, ``postgres/errors.py``).
- **Threads**: methods are safe to call from several threads.

The contract suite (``tests/contract``) runs against every backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput
from ..filters import FilterNode
from ..model import Direction, Edge, JSONObject, Node, VectorSpace

__all__ = [
    "COUNT_KINDS",
    "JOB_STATUSES",
    "UPDATABLE_FIELDS",
    "Admin",
    "Backend",
    "Change",
    "CountKind",
    "EdgeStore",
    "Job",
    "JobCounts",
    "JobQueue",
    "JobSpec",
    "JobStatus",
    "Labels",
    "Matrix",
    "NodeStore",
    "OnConflict",
    "StoreStats",
    "TextSearch",
    "VectorStore",
    "check_updatable",
    "count_jobs",
]

OnConflict = Literal["error", "replace", "ignore"]
Labels = npt.NDArray[np.int64]
Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Change:
    """One vector change-log entry: ``op`` is ``add`` or ``del`` of the vector ``label``."""

    seq: int
    op: Literal["add", "del"]
    label: int


UPDATABLE_FIELDS = frozenset(
    {"kind", "text", "props", "source", "category", "confidence", "strength", "access_count",
     "last_accessed", "created"}
)
"""The node fields ``update_node`` may change (``id``, ``tenant`` and ``updated`` are the
store's)."""


def check_updatable(changes: Mapping[str, object]) -> None:
    """``InvalidInput`` naming the fields of ``changes`` that ``update_node`` may not set."""
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise InvalidInput(f"cannot update {sorted(unknown)}; updatable: "
                           f"{sorted(UPDATABLE_FIELDS)}")

JobStatus = Literal["queued", "running", "failed", "done"]
JOB_STATUSES: tuple[JobStatus, ...] = ("queued", "running", "failed", "done")
CountKind = Literal["nodes", "edges", "vectors"]
COUNT_KINDS: tuple[CountKind, ...] = ("nodes", "edges", "vectors")


class JobCounts(TypedDict):
    """``Backend.job_counts()``: totals per status, the same per task, and when the last job
    was done (``None`` if none ever was)."""

    queued: int
    running: int
    failed: int
    done: int
    by_task: dict[str, dict[str, int]]
    last_done: float | None


class StoreStats(TypedDict):
    """``Backend.stats(tenant)``: the tenant's nodes by kind, edges by type, vectors by space,
    and the store's ``seq`` and change-log length. Those two are not the tenant's: there is
    one change log and one sequence for the whole store (the vector index and the result
    cache are stamped with it, and ``Store.seq`` returns it too), so they grow with every
    tenant's writes. A per-tenant number would be another quantity under the same name."""

    tenant: str
    nodes: dict[str, int]
    edges: dict[str, int]
    vectors: dict[str, int]
    seq: int
    log_entries: int


def count_jobs(by_status: Iterable[Sequence[Any]], totals: Iterable[Sequence[Any]]) -> JobCounts:
    """``JobCounts`` from two queries every backend runs: ``(task, status, count)`` over the
    jobs table, and ``(task, done, last_done)`` over the done-jobs totals (driver rows)."""
    overall = dict.fromkeys(JOB_STATUSES, 0)
    by_task: dict[str, dict[str, int]] = {}
    last_done: float | None = None
    for task, status, count in by_status:
        by_task.setdefault(task, dict.fromkeys(JOB_STATUSES, 0))[status] = count
        overall[status] += count
    for task, done, last in totals:
        by_task.setdefault(task, dict.fromkeys(JOB_STATUSES, 0))["done"] = done
        overall["done"] += done
        last_done = last if last_done is None else max(last_done, last)
    return JobCounts(queued=overall["queued"], running=overall["running"],
                     failed=overall["failed"], done=overall["done"], by_task=by_task,
                     last_done=last_done)


@dataclass(frozen=True)
class JobSpec:
    """A job to enqueue: run ``task`` (``embed``, ``entities``, ...) for one node."""

    task: str
    node_id: str
    payload: JSONObject | None = None


@dataclass(frozen=True)
class Job:
    """A queued, running or failed job of the weaver's durable queue (done jobs are counted,
    not kept). ``attempts`` counts claims; ``lease_until`` is when a running job whose worker
    died may be claimed again."""

    id: int
    tenant: str
    task: str
    node_id: str
    payload: JSONObject
    status: Literal["queued", "running", "failed"]
    attempts: int
    run_after: float
    lease_until: float | None
    error: str | None
    created: float
    updated: float


class NodeStore(ABC):
    """Nodes of each tenant: ``(tenant, id)`` is a node's identity.

    Reads return what exists among the ids asked for (missing ids are absent, never an
    error); lists come in insertion order unless a method says otherwise. ``where`` is a
    parsed filter (``loomdb.filters``) with the semantics documented there; ``None`` matches
    every node.
    """

    @abstractmethod
    def put_nodes(self, tenant: str, nodes: Sequence[Node], on_conflict: OnConflict) -> None:
        """Insert nodes, atomically.

        ``on_conflict`` decides what an existing id does: ``error`` raises ``Conflict`` and
        writes nothing; ``replace`` overwrites every field but ``created`` and keeps the node's
        edges and vectors; ``ignore`` leaves the existing node untouched. A batch repeating an
        id behaves as if its nodes were written one after the other.
        """

    @abstractmethod
    def get_nodes(self, tenant: str, ids: Sequence[str]) -> dict[str, Node]:
        """The nodes that exist among ``ids``, keyed by id; missing ids are simply absent."""

    @abstractmethod
    def update_node(self, tenant: str, node_id: str, changes: Mapping[str, object]) -> Node:
        """Set the given fields of one node (``updated`` is stamped); ``NotFound`` if absent.

        ``props`` replaces the whole object. Returns the node as stored.
        """

    @abstractmethod
    def delete_nodes(self, tenant: str, ids: Sequence[str]) -> int:
        """Delete nodes with their edges (both directions) and vectors; returns how many
        existed. Missing ids are ignored."""

    @abstractmethod
    def list_nodes(
        self, tenant: str, where: FilterNode | None, limit: int, offset: int
    ) -> list[Node]:
        """Nodes matching ``where`` in insertion order."""

    @abstractmethod
    def count_nodes(self, tenant: str, where: FilterNode | None) -> int:
        """How many nodes match ``where``."""

    def filter_ids(self, tenant: str, ids: Sequence[str], where: FilterNode | None) -> list[str]:
        """The ids among ``ids`` that exist and match ``where``, in the given order. Backends
        override this to filter in the database without decoding the nodes."""
        from ..filters import matches

        nodes = self.get_nodes(tenant, ids)
        return [i for i in ids if i in nodes
                and (where is None or matches(where, {**nodes[i].__dict__}))]

    def sample_nodes(self, tenant: str, n: int) -> list[Node]:
        """Up to ``n`` of the tenant's nodes, for statistics; backends override this with a
        uniform random sample (this default takes the first ``n``)."""
        return self.list_nodes(tenant, None, n, 0)

    @abstractmethod
    def scan_nodes(self, tenant: str, after: int, limit: int) -> list[tuple[int, Node]]:
        """Up to ``limit`` of the tenant's nodes in insertion order, each with its position,
        from the first whose position is greater than ``after`` (0 starts at the beginning).

        Positions only grow, so a scan that resumes from the last position it returned
        neither repeats nor skips a node: keyset pages, as fast a million rows in as at the
        start (``list_nodes``' offset rereads every row before it)."""


class EdgeStore(ABC):
    """Directed, typed edges between nodes of one tenant: ``(src, dst, type)`` is an edge's
    identity. Deleting a node deletes its edges (``NodeStore.delete_nodes``).

    ``adjacent`` is the one primitive the traversals of ``loomdb.graph`` need; a backend
    that can walk the graph in one round trip sets ``native_graph`` and overrides the walks.
    """

    @abstractmethod
    def put_edges(self, tenant: str, edges: Sequence[Edge], on_conflict: OnConflict) -> None:
        """Insert edges, atomically; ``(src, dst, type)`` is the identity.

        Both endpoints must exist in the tenant, else ``NotFound`` naming them and nothing is
        written. ``on_conflict`` works as for ``put_nodes``.
        """

    @abstractmethod
    def get_edges(
        self,
        tenant: str,
        src: str | None = None,
        dst: str | None = None,
        types: Sequence[str] | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[Edge]:
        """Edges matching every given criterion, in insertion order, from ``offset``."""

    @abstractmethod
    def delete_edges(self, tenant: str, keys: Sequence[tuple[str, str, str]]) -> int:
        """Delete edges by ``(src, dst, type)``; returns how many existed."""

    @abstractmethod
    def adjacent(
        self,
        tenant: str,
        ids: Sequence[str],
        types: Sequence[str] | None,
        direction: Direction,
        limit: int,
    ) -> list[Edge]:
        """Edges touching ``ids`` (``out``: ids are sources; ``in``: targets; ``both``),
        at most ``limit``, ordered by weight descending then insertion order. The graph
        traversals in ``loomdb.graph`` are built on this one primitive."""

    @abstractmethod
    def scan_edges(self, tenant: str, after: int, limit: int) -> list[tuple[int, Edge]]:
        """The tenant's edges in insertion order, in keyset pages as ``scan_nodes`` gives."""

    #: True when the backend walks the graph itself (``expand_ids``, ``shortest_path_edges``)
    #: rather than ``loomdb.graph`` calling ``adjacent`` once per hop.
    native_graph: bool = False

    def expand_ids(
        self, tenant: str, seeds: Sequence[str], hops: int, types: Sequence[str] | None,
        direction: Direction, limit: int,
    ) -> tuple[dict[str, int], list[Edge]]:
        """The breadth-first walk of ``loomdb.graph.expand`` from existing ``seeds``, with its
        bounds: each reached id with its hop, in discovery order, and the edge that first
        reached it. Must equal the generic walk over ``adjacent``. Only if ``native_graph``."""
        raise NotImplementedError(f"{type(self).__name__} has no native graph traversal")

    def shortest_path_edges(
        self, tenant: str, start: str, goal: str, max_depth: int,
        types: Sequence[str] | None, direction: Direction,
    ) -> list[Edge] | None:
        """The edges of a path ``start -> goal`` with the fewest edges (both exist and
        differ), or ``None`` if there is none within ``max_depth``. Only if ``native_graph``."""
        raise NotImplementedError(f"{type(self).__name__} has no native graph traversal")


class VectorStore(ABC):
    """Named vector spaces (store-wide) and each tenant's vectors in them, one per node and
    space, under labels that are never reused; plus the change log of vector additions and
    deletions that the index view (``loomdb.index``) replays to catch up.

    Deleting a node deletes its vectors. Vectors come back as float32 rows unless a method
    says otherwise; missing ids and dead labels are simply absent from results.
    """

    @abstractmethod
    def create_space(self, space: VectorSpace) -> VectorSpace:
        """Create a vector space. Creating an identical one again is a no-op; one with the
        same name and other settings raises ``Conflict``."""

    @abstractmethod
    def get_space(self, name: str) -> VectorSpace:
        """The space called ``name``; ``NotFound`` if there is none."""

    @abstractmethod
    def list_spaces(self) -> list[VectorSpace]:
        """Every vector space, by name."""

    @abstractmethod
    def delete_space(self, name: str) -> int:
        """Delete a vector space with its vectors in every tenant (their removal is logged
        like any other); returns how many vectors it held. ``NotFound`` if there is none."""

    @abstractmethod
    def put_vectors(self, tenant: str, space: str, ids: Sequence[str], vectors: Matrix) -> None:
        """Set the vector of each node (replacing any, under a new label), atomically.

        The caller has validated shape and values. ``NotFound`` if a node is missing."""

    @abstractmethod
    def get_vectors(self, tenant: str, space: str, ids: Sequence[str]) -> dict[str, Matrix]:
        """The stored vectors of those ids that have one, in the space's storage dtype
        (float64 spaces give back exactly what was stored)."""

    @abstractmethod
    def delete_vectors(self, tenant: str, space: str, ids: Sequence[str]) -> int:
        """Remove the vectors of ``ids``; returns how many existed."""

    @abstractmethod
    def vector_labels(self, tenant: str, space: str, where: FilterNode | None) -> Labels:
        """Sorted labels of the vectors whose node matches ``where``."""

    @abstractmethod
    def vectors_by_label(
        self, tenant: str, space: str, labels: Sequence[int]
    ) -> tuple[Labels, Matrix]:
        """The live vectors among ``labels`` (labels sorted ascending, float32 rows)."""

    @abstractmethod
    def scan_vectors(
        self, tenant: str, space: str, batch: int = 10_000
    ) -> Iterator[tuple[Labels, Matrix]]:
        """Every vector of the tenant in the space, by ascending label, in batches."""

    @abstractmethod
    def nodes_by_label(self, tenant: str, space: str, labels: Sequence[int]) -> dict[int, Node]:
        """The nodes owning the live vectors ``labels``; dead labels are absent."""

    @abstractmethod
    def vector_changes(self, tenant: str, space: str, after: int) -> list[Change]:
        """Vector changes with ``seq > after``, in seq order. ``CorruptStore`` if the log no
        longer reaches back to ``after`` (it was purged past it)."""

    @abstractmethod
    def vector_tenants(self, space: str) -> list[str]:
        """Tenants that hold vectors in ``space``."""

    @abstractmethod
    def record_index_stamp(self, tenant: str, space: str, seq: int) -> None:
        """Remember that the saved index of (tenant, space) covers the log up to ``seq``."""

    @abstractmethod
    def purge_log(self) -> int:
        """Drop log entries every saved index already covers; never past any index stamp.
        Returns how many were dropped."""

    #: True when the backend searches vectors itself (``search_vectors``) rather than through
    #: the index view that ``loomdb.index`` builds from its labels and change log.
    native_vectors: bool = False

    def search_vectors(
        self, tenant: str, space: VectorSpace, query: Matrix, k: int,
        where: FilterNode | None, exact: bool,
    ) -> list[tuple[Node, float]]:
        """The ``k`` nodes of (space, tenant) nearest to ``query`` (validated, one row) that
        match ``where``, best first, scored as ``loomdb.similarity.exact_scores`` scores
        (higher is better). ``exact`` asks for brute force; otherwise an index may be used,
        but ``min(k, matches)`` results always come back. Only called if ``native_vectors``."""
        raise NotImplementedError(f"{type(self).__name__} has no native vector search")


class TextSearch(ABC):
    """Full-text search over node text, per tenant: every word of a query is searched and none
    is syntax; scores are higher-is-better on the backend's own scale (``text_score`` names
    it), so compare them within one backend only.
    """

    #: The name of ``text_search``'s score in a hit's ``scores``: its scale is the backend's.
    text_score: str = "bm25"

    @abstractmethod
    def text_search(
        self, tenant: str, query: str, k: int, where: FilterNode | None
    ) -> list[tuple[Node, float]]:
        """Best ``k`` nodes for ``query`` by BM25 over node text (``ts_rank_cd`` on PostgreSQL:
        another scale), score higher-is-better.

        ``query`` is plain text: every word is searched, none is syntax."""

    def text_scores(self, tenant: str, query: str, ids: Sequence[str],
                    k: int) -> list[tuple[str, float]]:
        """``text_search`` restricted to ``ids``: the best ``k`` of them with their scores
        (same scale as ``text_search``), best first. Backends override this to score just
        those nodes instead of searching the whole index."""
        from ..filters import parse_filter

        where = parse_filter({"id": {"$in": list(ids)[:10_000]}})
        return [(n.id, s) for n, s in self.text_search(tenant, query, k, where)]


class JobQueue(ABC):
    """The weaver's durable queue: jobs for (tenant, task, node), enqueued in the caller's
    transaction, claimed under a lease by workers of any tenant, completed or failed.
    Store-wide: workers serve every tenant, so only enqueueing and listing name one.
    """

    @abstractmethod
    def enqueue_jobs(self, tenant: str, jobs: Sequence[JobSpec], run_after: float = 0.0) -> int:
        """Queue jobs, inside the caller's transaction when there is one (so a write and its
        enrichment commit together). A job whose (tenant, task, node_id) is already queued is
        not duplicated: its payload and run_after are replaced. A failed job with the same key
        is superseded (removed). A running one is left alone: the new job runs after it.
        Returns the number of jobs now queued for the given specs."""

    @abstractmethod
    def claim_jobs(
        self, tasks: Sequence[str] | None, limit: int, lease: float, now: float
    ) -> list[Job]:
        """Atomically take up to ``limit`` jobs (of ``tasks``, or any) that are queued with
        ``run_after <= now``, or running with ``lease_until <= now`` (their worker died): mark
        them running until ``now + lease`` with ``attempts + 1``. Oldest first, any tenant."""

    @abstractmethod
    def complete_jobs(self, ids: Sequence[int], now: float) -> int:
        """Remove finished jobs, counting them done per task. Unknown ids are ignored."""

    @abstractmethod
    def fail_job(self, job_id: int, error: str, retry_at: float | None, now: float) -> None:
        """Record a failed attempt: queue the job again at ``retry_at``, or with ``None`` mark
        it failed for good (kept, with its error, until the node is enqueued again)."""

    @abstractmethod
    def list_jobs(
        self, tenant: str | None, node_id: str | None = None, status: str | None = None,
        limit: int = 100,
    ) -> list[Job]:
        """Jobs (not done ones), oldest first, optionally for one tenant, node or status."""

    @abstractmethod
    def job_counts(self, tenant: str | None = None) -> JobCounts:
        """``{"queued", "running", "failed", "done"}`` totals, ``"by_task"`` with the same per
        task, and ``"last_done"`` (time of the last completion, or None). With ``tenant``,
        queued, running and failed count only that tenant's jobs; ``done`` and ``last_done``
        stay the store's, as done jobs are totalled per task, not per tenant."""


class Admin(ABC):
    """The store as a whole: its lifecycle, transactions spanning every other part, the
    change log's ``seq``, the tenants it holds, tools' metadata, statistics and integrity.
    """

    @abstractmethod
    def close(self) -> None:
        """Release connections and locks. Idempotent."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """All writes inside commit together or not at all; nested blocks are savepoints.

        Outside a transaction every write method is atomic on its own.
        """

    @abstractmethod
    def in_transaction(self) -> bool:
        """Whether the calling code is inside ``transaction()``."""

    @abstractmethod
    def seq(self) -> int:
        """The sequence number of the last committed change (0 for an empty store)."""

    def store_id(self) -> str | None:
        """A unique id the store keeps for itself (made when it is created), or ``None`` if
        the backend has none; it names the store in a result cache shared between servers."""
        return None

    @abstractmethod
    def tenants(self) -> list[str]:
        """Every tenant that holds at least one node, sorted."""

    @abstractmethod
    def get_meta(self, key: str) -> str | None:
        """A store-wide value a tool keeps beside the data (a migration's checkpoint, say),
        or ``None``. Such keys live apart from the backend's own bookkeeping."""

    @abstractmethod
    def set_meta(self, key: str, value: str | None) -> None:
        """Set a store-wide value (``None`` removes it), inside the caller's transaction when
        there is one, so that it commits together with the writes it describes."""

    @abstractmethod
    def stats(self, tenant: str) -> StoreStats:
        """Counts for the tenant: nodes by kind, edges by type, vectors by space, seq."""

    @abstractmethod
    def check_integrity(self) -> list[str]:
        """Problems found by the backend's own integrity check; empty when healthy."""


class Backend(NodeStore, EdgeStore, VectorStore, TextSearch, JobQueue, Admin):
    """Storage of one loomdb store: every part of the protocol. Methods are safe to call from
    several threads."""
