"""The Database facade: one tenant's view of a store — CRUD, vectors, search, graph,
ingestion, chats and memories, and control of the weaver that enriches them.

Every method validates its input, then calls the backend (the source of truth), the index
view or the graph traversals. A ``Database`` is safe to share between threads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from . import graph
from .config import IndexSettings, StoreSettings
from .errors import InvalidInput, MissingDependency, NotFound
from .index import VectorIndexView
from .knowledge import Knowledge
from .ml.bridge import MLProvider
from .model import (
    METRICS,
    QUANTIZATIONS,
    Direction,
    Edge,
    Hit,
    Metric,
    Node,
    Quantization,
    VectorSpace,
)
from .model import (
    Path as GraphPath,
)
from .query.cache import ResultCache, open_cache
from .query.engine import QueryEngine
from .query.filters import FilterNode, parse_filter
from .query.vector import vector_search
from .retrieval import Retrieval
from .storage.base import Backend, OnConflict
from .storage.sqlite import SqliteBackend
from .validation import (
    check_direction,
    check_id,
    check_limit,
    check_name,
    check_offset,
    check_unicode,
    check_vectors,
    unique,
)
from .weaver.tasks import EnrichmentSettings
from .weaver.worker import Weaver

__all__ = ["Database", "open"]

NODE_FIELDS = frozenset(Node.__dataclass_fields__) - {"tenant"}
EDGE_FIELDS = frozenset(Edge.__dataclass_fields__) - {"tenant"}
CONFLICT_MODES = ("error", "replace", "ignore")
Record = TypeVar("Record", Node, Edge)
NODE_TEXTS = ("id", "kind", "text", "source", "category")
EDGE_TEXTS = ("src", "dst", "type")
STORAGE_TYPES = ("float32", "float16", "float64")


def open(  # noqa: A001 - loomdb.open mirrors sqlite3.connect / io.open
    path: str | Path = ":memory:",
    *,
    durability: str = "full",
    read_only: bool = False,
    busy_timeout: float = 5.0,
    index: IndexSettings | None = None,
    ml: MLProvider | str | None = "local",
    weaver: bool = True,
    enrichment: EnrichmentSettings | None = None,
    cache: str | ResultCache | None = "memory",
) -> Database:
    """Open (creating if needed) the store in directory ``path``, or a memory store, or the
    PostgreSQL database of a ``postgresql://user@host:port/db`` URL (``loomdb[postgres]``).

    A second process opening the same directory for writing gets ``StoreLocked`` naming the
    holder; ``read_only=True`` opens without the lock. On PostgreSQL, ``durability`` sets
    ``synchronous_commit``, and of ``index`` only ``ef_search``, ``exact_threshold`` and the
    oversampling apply: pgvector searches in the server, with its own HNSW indexes.

    Args:
        ml: the ML provider for ingestion and enrichment: ``"local"`` (MiniLM, spaCy and an
            extractive summarizer; loaded on first use), an ``MLProvider``, or ``None`` for a
            store that never embeds or extracts by itself.
        weaver: run enrichment jobs in a background thread (started on the first write that
            queues jobs, or at once when jobs are waiting from an earlier run). With
            ``False`` jobs wait until ``wait_for_enrichment()`` runs them inline.
        enrichment: novelty threshold, summary length, embedding space and memory half-life.
        cache: the query result cache: ``"memory"`` (in-process), a ``redis://`` URL to share
            one between servers, a ``ResultCache``, or ``None``.
    """
    if durability not in ("full", "normal", "off"):
        raise InvalidInput(f"durability must be full, normal or off, got {durability!r}")
    settings = StoreSettings(durability=durability, busy_timeout=busy_timeout,  # type: ignore[arg-type]
                             read_only=read_only, index=index or IndexSettings())
    backend: Backend
    if isinstance(path, str) and path.startswith(("postgresql://", "postgres://")):
        from .storage.postgres import open_backend

        backend, directory = open_backend(path, settings), None  # pgvector searches: no files
    else:
        sqlite = SqliteBackend(path, settings)
        backend = sqlite
        directory = None if sqlite.directory is None else sqlite.directory / "index"
    db = Database(backend, VectorIndexView(backend, directory, settings.index), settings)
    db.weaver = Weaver(db, _provider_factory(ml), enrichment)
    db.engine = QueryEngine(db, settings.index, open_cache(cache), _namespace(path, backend))
    db._owns_cache = not isinstance(cache, ResultCache)  # a cache passed in is the caller's
    db._background = weaver and not read_only
    if db._background and backend.job_counts()["queued"]:
        db.weaver.start()  # resume the enrichment an earlier process left queued
    return db


def _namespace(path: str | Path, backend: Backend) -> str:
    """The store's identity in a shared result cache: the id the store keeps for itself (so
    two machines' stores at the same path never share entries), else where it lives (never
    with its password)."""
    identity = backend.store_id()
    if identity is not None:
        return identity
    if isinstance(path, str) and "://" in path:
        scheme, _, rest = path.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"
    if str(path) == ":memory:":
        return f"memory:{id(backend):x}"
    return f"sqlite:{Path(path).resolve()}"


def _provider_factory(ml: MLProvider | str | None) -> Callable[[], MLProvider]:
    """How the weaver gets its provider: built on first use, so opening loads no model."""
    if isinstance(ml, MLProvider):
        return lambda: ml
    if ml is None:
        def refuse() -> MLProvider:
            raise MissingDependency("this store was opened with ml=None; open it with "
                                    "ml='local' or an MLProvider to ingest or enrich")
        return refuse
    if ml == "local":
        from .ml.defaults import default_provider

        return default_provider
    raise InvalidInput(f"ml must be 'local', an MLProvider or None, got {ml!r}")


def _coerce(item: Any, cls: type[Record], fields: frozenset[str], tenant: str) -> Record:
    """``item`` (a ``cls``, or a mapping of its fields) as a ``cls`` of ``tenant``."""
    if isinstance(item, cls):
        return replace(item, tenant=tenant)
    if type(item) is dict or isinstance(item, Mapping):  # dict first: ABC checks are slow
        unknown = set(item) - fields
        if unknown:
            raise InvalidInput(f"unknown {cls.__name__.lower()} field(s) {sorted(unknown)}")
        return cls(**item, tenant=tenant)
    raise InvalidInput(f"expected a {cls.__name__} or a mapping, got {type(item).__name__}")


def _as_node(item: Node | Mapping[str, Any], tenant: str) -> Node:
    node = _coerce(item, Node, NODE_FIELDS, tenant)
    check_id(node.id)
    if not isinstance(node.kind, str) or not node.kind:
        raise InvalidInput(f"node {node.id!r}: kind must be a non-empty string")
    if node.text is not None and not isinstance(node.text, str):
        raise InvalidInput(f"node {node.id!r}: text must be a string")
    if not isinstance(node.props, dict):
        raise InvalidInput(f"node {node.id!r}: props must be a JSON object (dict)")
    check_unicode(f"node {node.id!r}", NODE_TEXTS,
                  (node.id, node.kind, node.text, node.source, node.category))
    return node


def _as_edge(item: Edge | Mapping[str, Any], tenant: str) -> Edge:
    edge = _coerce(item, Edge, EDGE_FIELDS, tenant)
    check_id(edge.src)
    check_id(edge.dst)
    if not isinstance(edge.type, str) or not edge.type:
        raise InvalidInput("edge type must be a non-empty string")
    if not isinstance(edge.weight, (int, float)) or not math.isfinite(edge.weight):
        raise InvalidInput(f"edge {edge.src}->{edge.dst}: weight must be a finite number")
    if not isinstance(edge.props, dict):
        raise InvalidInput("edge props must be a JSON object (dict)")
    check_unicode(f"edge {edge.src!r} -> {edge.dst!r}", EDGE_TEXTS,
                  (edge.src, edge.dst, edge.type))
    return edge


class Database(Knowledge, Retrieval):
    """One tenant's handle on a store. ``db.tenant(name)`` gives another tenant's."""

    def __init__(
        self,
        backend: Backend,
        view: VectorIndexView,
        settings: StoreSettings,
        tenant: str = "default",
        owner: bool = True,
        weaver: Weaver | None = None,
        background: bool = False,
        engine: QueryEngine | None = None,
    ) -> None:
        self.backend = backend
        self.view = view
        self.settings = settings
        self.tenant_name = tenant
        self._owner = owner
        self._closed = False
        self.weaver = weaver if weaver is not None else Weaver(self, _provider_factory(None))
        self._background = background
        self.engine = engine if engine is not None else QueryEngine(self, settings.index)
        self._owns_cache = False

    # -- lifecycle -------------------------------------------------------------------------

    def tenant(self, name: str) -> Database:
        """A handle scoped to tenant ``name``; nothing it does reads or touches other tenants."""
        return Database(self.backend, self.view, self.settings, check_name(name, "tenant"),
                        owner=False, weaver=self.weaver, background=self._background,
                        engine=self.engine)

    def close(self) -> None:
        """Save the vector indexes and release the store. Tenant handles close nothing."""
        if self._owner and not self._closed:
            self._closed = True
            self.weaver.stop()  # after its batch in progress; queued jobs stay in the store
            if self.engine.cache is not None and self._owns_cache:
                self.engine.cache.close()
            try:
                if not self.settings.read_only:
                    self.checkpoint()
            finally:
                self.backend.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """Commit every write inside together, or none of them if the block raises."""
        with self.backend.transaction():
            yield self

    @property
    def seq(self) -> int:
        """The store's change sequence number: it grows with every committed change."""
        return self.backend.seq()

    def checkpoint(self) -> None:
        """Save changed vector indexes now and purge the change log they cover (a backend
        that searches vectors itself has no index files: its whole log is covered)."""
        if self.backend.native_vectors:
            self._purge_native_log()
        else:
            self.view.save()

    def _purge_native_log(self) -> None:
        if self.settings.read_only or self.backend.in_transaction():
            return
        seq = self.backend.seq()
        for space in self.backend.list_spaces():
            for tenant in self.backend.vector_tenants(space.name):
                self.backend.record_index_stamp(tenant, space.name, seq)
        self.backend.purge_log()

    # -- nodes -----------------------------------------------------------------------------

    def add_node(
        self,
        id: str,  # noqa: A002 - the model's own field name
        kind: str = "concept",
        text: str | None = None,
        props: dict[str, Any] | None = None,
        *,
        vector: Any = None,
        space: str = "text",
        **fields: Any,
    ) -> Node:
        """Add one node (``Conflict`` if the id exists), with its vector if given."""
        node = {"id": id, "kind": kind, "text": text, "props": props or {}, **fields}
        vectors = None if vector is None else [vector]
        self.add_nodes([node], vectors=vectors, space=space)
        return self.get_node(id)

    def add_nodes(
        self,
        nodes: Iterable[Node | Mapping[str, Any]],
        *,
        vectors: Any = None,
        space: str = "text",
        on_conflict: OnConflict = "error",
    ) -> list[str]:
        """Add nodes atomically, with one vector each if ``vectors`` is given.

        ``on_conflict``: ``error`` (default) raises ``Conflict`` and writes nothing;
        ``replace`` overwrites existing nodes (keeping ``created``, edges and vectors);
        ``ignore`` keeps them as they are.
        """
        if on_conflict not in CONFLICT_MODES:
            raise InvalidInput(f"on_conflict must be one of {CONFLICT_MODES}")
        batch = [_as_node(item, self.tenant_name) for item in nodes]
        ids = [n.id for n in batch]
        matrix = None
        if vectors is not None:
            matrix = check_vectors(self.space(space), vectors, count=len(batch))
        with self.backend.transaction():
            self.backend.put_nodes(self.tenant_name, batch, on_conflict)
            if matrix is not None:
                self.backend.put_vectors(self.tenant_name, space, ids, matrix)
        return ids

    def upsert_nodes(
        self, nodes: Iterable[Node | Mapping[str, Any]], *, vectors: Any = None,
        space: str = "text",
    ) -> list[str]:
        """Insert new nodes and replace existing ones (see ``add_nodes``)."""
        return self.add_nodes(nodes, vectors=vectors, space=space, on_conflict="replace")

    def get_node(self, id: str) -> Node:  # noqa: A002
        """The node ``id``; ``NotFound`` if it does not exist in this tenant."""
        found = self.backend.get_nodes(self.tenant_name, [check_id(id)])
        if id not in found:
            raise NotFound(f"node {id!r} does not exist in tenant {self.tenant_name!r}")
        return found[id]

    def get_nodes(self, ids: Sequence[str]) -> dict[str, Node]:
        """The nodes among ``ids`` that exist, keyed by id."""
        return self.backend.get_nodes(self.tenant_name, [check_id(i) for i in ids])

    def has_node(self, id: str) -> bool:  # noqa: A002
        return bool(self.backend.get_nodes(self.tenant_name, [check_id(id)]))

    def update_node(self, id: str, **changes: Any) -> Node:  # noqa: A002
        """Set the given fields (``props`` replaces the whole object); ``NotFound`` if absent."""
        if "props" in changes and not isinstance(changes["props"], dict):
            raise InvalidInput("props must be a JSON object (dict)")
        return self.backend.update_node(self.tenant_name, check_id(id), changes)

    def delete_node(self, id: str) -> bool:  # noqa: A002
        """Delete a node with its edges and vectors; ``False`` if it did not exist."""
        return self.delete_nodes([id]) == 1

    def delete_nodes(self, ids: Sequence[str]) -> int:
        """Delete nodes with their edges and vectors; returns how many existed."""
        return self.backend.delete_nodes(self.tenant_name, unique([check_id(i) for i in ids]))

    def list_nodes(
        self, where: Mapping[str, Any] | None = None, *, kind: str | None = None,
        limit: int = 100, offset: int = 0,
    ) -> list[Node]:
        """Nodes matching the filter, in insertion order."""
        return self.backend.list_nodes(self.tenant_name, self._where(where, kind),
                                       check_limit(limit), check_offset(offset))

    def count(self, where: Mapping[str, Any] | None = None, *, kind: str | None = None) -> int:
        """How many nodes match the filter."""
        return self.backend.count_nodes(self.tenant_name, self._where(where, kind))

    @staticmethod
    def _where(where: Mapping[str, Any] | None, kind: str | None = None) -> FilterNode | None:
        if kind is not None:
            where = {"$and": [dict(where), {"kind": kind}]} if where else {"kind": kind}
        return parse_filter(where)

    # -- edges -----------------------------------------------------------------------------

    def add_edge(
        self, src: str, dst: str, type: str = "related", weight: float = 1.0,  # noqa: A002
        **fields: Any,
    ) -> Edge:
        """Add one edge ``src -> dst``; ``Conflict`` if (src, dst, type) exists."""
        self.add_edges([{"src": src, "dst": dst, "type": type, "weight": weight, **fields}])
        return self.get_edges(src=src, dst=dst, types=[type])[0]

    def add_edges(
        self, edges: Iterable[Edge | Mapping[str, Any]], *, on_conflict: OnConflict = "error"
    ) -> int:
        """Add edges atomically; ``NotFound`` if an endpoint is missing. Returns the count."""
        if on_conflict not in CONFLICT_MODES:
            raise InvalidInput(f"on_conflict must be one of {CONFLICT_MODES}")
        batch = [_as_edge(item, self.tenant_name) for item in edges]
        if batch:
            self.backend.put_edges(self.tenant_name, batch, on_conflict)
        return len(batch)

    def upsert_edges(self, edges: Iterable[Edge | Mapping[str, Any]]) -> int:
        """Insert new edges and replace the weight, confidence and props of existing ones."""
        return self.add_edges(edges, on_conflict="replace")

    def get_edges(
        self, *, src: str | None = None, dst: str | None = None,
        types: Sequence[str] | None = None, limit: int = 1000, offset: int = 0,
    ) -> list[Edge]:
        """Edges matching every given criterion, in insertion order; page with ``offset``."""
        return self.backend.get_edges(self.tenant_name, src, dst, types, check_limit(limit),
                                      check_offset(offset))

    def delete_edge(self, src: str, dst: str, type: str = "related") -> bool:  # noqa: A002
        """Delete one edge; ``False`` if it did not exist."""
        return self.backend.delete_edges(self.tenant_name, [(src, dst, type)]) == 1

    # -- vectors ---------------------------------------------------------------------------

    def create_space(
        self, name: str, dim: int, *, model: str = "unknown", metric: Metric = "cosine",
        quantization: Quantization = "f32", storage: str = "float32",
    ) -> VectorSpace:
        """Create a vector space (shared by all tenants); again with equal settings is a no-op."""
        if isinstance(dim, bool) or not isinstance(dim, int) or not 0 < dim <= 16_384:
            raise InvalidInput(f"dim must be an integer from 1 to 16384, got {dim!r}")
        if metric not in METRICS or quantization not in QUANTIZATIONS:
            raise InvalidInput(f"metric must be one of {METRICS}, quantization one of "
                               f"{QUANTIZATIONS}")
        if storage not in STORAGE_TYPES:
            raise InvalidInput(f"storage must be one of {STORAGE_TYPES}")
        space = VectorSpace(check_name(name, "space"), dim, model, metric, quantization,
                            storage)  # type: ignore[arg-type]
        return self.backend.create_space(space)

    def space(self, name: str = "text") -> VectorSpace:
        """The vector space ``name``; ``NotFound`` (naming the spaces there are) if absent."""
        return self.backend.get_space(name)

    def spaces(self) -> list[VectorSpace]:
        return self.backend.list_spaces()

    def set_vector(
        self, id: str, vector: Any, *, space: str = "text", model: str | None = None  # noqa: A002
    ) -> None:
        """Set (or replace) the vector of node ``id`` in ``space``."""
        self.set_vectors([id], [vector], space=space, model=model)

    def set_vectors(
        self, ids: Sequence[str], vectors: Any, *, space: str = "text", model: str | None = None
    ) -> None:
        """Set the vectors of many nodes atomically. ``model``, if given, must be the space's."""
        matrix = check_vectors(self.space(space), vectors, model=model, count=len(ids))
        self.backend.put_vectors(self.tenant_name, space, [check_id(i) for i in ids], matrix)

    def get_vector(self, id: str, *, space: str = "text") -> npt.NDArray[Any]:  # noqa: A002
        """The stored vector of ``id`` in the space's storage dtype; ``NotFound`` if none."""
        found = self.backend.get_vectors(self.tenant_name, space, [check_id(id)])
        if id not in found:
            raise NotFound(f"node {id!r} has no vector in space {space!r}")
        return found[id]

    def get_vectors(self, ids: Sequence[str], *, space: str = "text") -> dict[str, Any]:
        """The stored vectors of those ``ids`` that have one in ``space``, keyed by id."""
        self.space(space)
        return self.backend.get_vectors(self.tenant_name, space, [check_id(i) for i in ids])

    def delete_vector(self, id: str, *, space: str = "text") -> bool:  # noqa: A002
        return self.backend.delete_vectors(self.tenant_name, space, [check_id(id)]) == 1

    # -- search ----------------------------------------------------------------------------

    def vector_search(
        self, vector: Any, k: int = 10, *, space: str = "text",
        where: Mapping[str, Any] | None = None, kind: str | None = None,
        exact: bool = False, model: str | None = None,
    ) -> list[Hit]:
        """The ``k`` nodes nearest to ``vector``, best first (score: higher is better).

        With a filter, ``k`` results come back whenever ``k`` matching nodes have vectors.
        """
        vector_space = self.space(space)
        query = check_vectors(vector_space, vector, model=model, count=1)[0]
        return vector_search(self.backend, self.view, self.settings.index, self.tenant_name,
                             vector_space, query, check_limit(k, "k", 10_000),
                             self._where(where, kind), exact)

    def text_search(
        self, query: str, k: int = 10, *, where: Mapping[str, Any] | None = None,
        kind: str | None = None,
    ) -> list[Hit]:
        """Full-text search by BM25 over node text; every word of ``query`` counts."""
        if not isinstance(query, str):
            raise InvalidInput("query must be a string")
        found = self.backend.text_search(self.tenant_name, query.replace("\x00", " "),
                                         check_limit(k, "k", 10_000), self._where(where, kind))
        return [Hit.of(n, s, {self.backend.text_score: s}) for n, s in found]

    # -- graph -----------------------------------------------------------------------------

    def neighbors(
        self, id: str, *, types: Sequence[str] | None = None,  # noqa: A002
        direction: Direction = "out", where: Mapping[str, Any] | None = None, limit: int = 100,
    ) -> list[tuple[Node, Edge]]:
        """Nodes one edge from ``id``, with that edge, strongest first."""
        return graph.neighbors(self.backend, self.tenant_name, check_id(id), types,
                               check_direction(direction), self._where(where),
                               check_limit(limit))

    def expand(
        self, ids: Sequence[str] | str, *, hops: int = 2, types: Sequence[str] | None = None,
        direction: Direction = "out", where: Mapping[str, Any] | None = None,
        limit: int = 1000,
    ) -> graph.Subgraph:
        """Everything within ``hops`` edges of ``ids`` (at most ``limit`` nodes)."""
        seeds = [ids] if isinstance(ids, str) else list(ids)
        return graph.expand(self.backend, self.tenant_name, [check_id(i) for i in seeds],
                            check_limit(hops, "hops", 10), types, check_direction(direction),
                            self._where(where), check_limit(limit))

    def shortest_path(
        self, start: str, goal: str, *, weighted: bool = False, max_depth: int = 6,
        types: Sequence[str] | None = None, direction: Direction = "out",
    ) -> GraphPath | None:
        """The shortest path ``start -> goal`` (fewest edges, or least total weight when
        ``weighted``), or ``None`` if there is none within ``max_depth`` edges."""
        return graph.shortest_path(self.backend, self.tenant_name, check_id(start),
                                   check_id(goal), weighted, check_limit(max_depth, "max_depth",
                                                                         100),
                                   types, check_direction(direction))

    # -- maintenance -----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts of this tenant's nodes by kind, edges by type and vectors by space."""
        return self.backend.stats(self.tenant_name)

    def reindex(
        self, space: str | None = None, *, progress: Callable[[int, int], None] | None = None
    ) -> dict[tuple[str, str], int]:
        """Rebuild the vector index of ``space`` (or all) from the stored vectors and save it;
        ``progress(done, total)`` follows each index's build."""
        spaces = [self.space(space)] if space else self.spaces()
        if self.backend.native_vectors:
            return {}  # the database maintains its own indexes (PostgreSQL: pgvector HNSW)
        sizes = self.view.rebuild(spaces, progress)
        self.view.save()
        return sizes

    def warm_up(self, space: str | None = None) -> int:
        """Load the vector indexes of ``space`` (or all) into memory now, so the first queries
        after opening a large store run at full speed. Returns the bytes read from disk.

        Opening is instant because indexes are memory-mapped; without this, pages come in as
        queries touch them, which makes early queries on a cold cache slow."""
        spaces = [self.space(space)] if space else self.spaces()
        return 0 if self.backend.native_vectors else self.view.warm_up(spaces)

    def check(self) -> list[str]:
        """Problems found: backend integrity, and index entries that differ from the tables."""
        problems = self.backend.check_integrity()
        if self.backend.native_vectors:
            return problems  # no index view to compare: the database keeps its own
        for space in self.spaces():
            for tenant in self.backend.vector_tenants(space.name):
                index = self.view.get(space, tenant)
                live = np.sort(index.labels[~index.dead])
                stored = self.backend.vector_labels(tenant, space.name, None)
                if not np.array_equal(live, stored):
                    problems.append(f"index {space.name}/{tenant} holds {len(live)} vectors, "
                                    f"the store {len(stored)}")
        return problems
