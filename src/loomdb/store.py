"""One tenant's records: nodes, edges, vectors, search and graph walks, validated, over the
backend (the source of truth) and the vector index view.

``Store`` is what the pipelines work with (through ``loomdb.context.Context``) and the typed
base of the ``Database`` facade, which adds ingestion, chats, the weaver and converged queries
on top. Everything a user hands it is checked here, so bad input fails early with a
``LoomError``. Every method that takes a node id also takes the ``Node`` itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TypeVar

import numpy.typing as npt

from . import graph
from .config import StoreSettings
from .errors import InvalidInput, NotFound
from .filters import FilterNode, Where, parse_where
from .index import VectorIndex
from .model import (
    METRICS,
    QUANTIZATIONS,
    Direction,
    Edge,
    Hit,
    JSONObject,
    Metric,
    Node,
    NodeRef,
    Quantization,
    VectorSpace,
)
from .model import Path as GraphPath
from .similarity import Matrix
from .storage.base import Backend, OnConflict, StoreStats, check_updatable
from .validation import (
    check_direction,
    check_edge_fields,
    check_id,
    check_limit,
    check_name,
    check_node_fields,
    check_offset,
    check_unicode,
    check_vectors,
    unique,
)

__all__ = ["Store", "Vectors"]

Vectors = npt.ArrayLike | Sequence[npt.ArrayLike]  # a matrix, or one row per node

NODE_FIELDS = frozenset(Node.__dataclass_fields__) - {"tenant"}
EDGE_FIELDS = frozenset(Edge.__dataclass_fields__) - {"tenant"}
CONFLICT_MODES = ("error", "replace", "ignore")
Record = TypeVar("Record", Node, Edge)
NODE_TEXTS = ("id", "kind", "text", "source", "category")
EDGE_TEXTS = ("src", "dst", "type")
STORAGE_TYPES = ("float32", "float16", "float64")


def _coerce(item: object, cls: type[Record], fields: frozenset[str], tenant: str) -> Record:
    """``item`` (a ``cls``, or a mapping of its fields) as a ``cls`` of ``tenant``."""
    if isinstance(item, cls):
        return replace(item, tenant=tenant)
    if type(item) is dict or isinstance(item, Mapping):  # dict first: ABC checks are slow
        unknown = set(item) - fields
        if unknown:
            raise InvalidInput(f"unknown {cls.__name__.lower()} field(s) {sorted(unknown)}")
        return cls(**item, tenant=tenant)
    raise InvalidInput(f"expected a {cls.__name__} or a mapping, got {type(item).__name__}")


def _as_node(item: Node | Mapping[str, object], tenant: str) -> Node:
    node = _coerce(item, Node, NODE_FIELDS, tenant)
    owner = f"node {check_id(node.id)!r:.80}"
    changed = check_node_fields(owner, vars(node), inserting=True)  # checks only the columns
    check_unicode(owner, NODE_TEXTS, (node.id, node.kind, node.text, node.source,
                                      node.category))
    return replace(node, **changed) if changed else node  # type: ignore[arg-type]


def _as_edge(item: Edge | Mapping[str, object], tenant: str) -> Edge:
    edge = _coerce(item, Edge, EDGE_FIELDS, tenant)
    src, dst = check_id(edge.src), check_id(edge.dst)
    owner = f"edge {src!r:.80} -> {dst!r:.80}"
    changed = check_edge_fields(owner, vars(edge))
    if src is not edge.src or dst is not edge.dst or changed:  # Nodes given for the endpoints
        edge = replace(edge, src=src, dst=dst, **changed)  # type: ignore[arg-type]
    check_unicode(owner, EDGE_TEXTS, (edge.src, edge.dst, edge.type))
    return edge


def _optional_id(ref: NodeRef | None) -> str | None:
    return None if ref is None else check_id(ref)


class Store:
    """One tenant's validated records over a backend and its index view."""

    def __init__(self, backend: Backend, view: VectorIndex, settings: StoreSettings,
                 tenant: str = "default") -> None:
        self.backend = backend
        self.view = view
        self.settings = settings
        self.tenant_name = tenant

    def records_of(self, tenant: str) -> Store:
        """Tenant ``tenant``'s records over the same backend and view."""
        return Store(self.backend, self.view, self.settings, check_name(tenant, "tenant"))

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Commit every write inside together, or none of them if the block raises."""
        with self.backend.transaction():
            yield self

    @property
    def seq(self) -> int:
        """The store's change sequence number: it grows with every committed change."""
        return self.backend.seq()

    def stats(self) -> StoreStats:
        """Counts of this tenant's nodes by kind, edges by type and vectors by space."""
        return self.backend.stats(self.tenant_name)

    # -- nodes -----------------------------------------------------------------------------

    def add_node(
        self,
        id: str,  # noqa: A002 - the model's own field name
        kind: str = "concept",
        text: str | None = None,
        props: JSONObject | None = None,
        *,
        vector: npt.ArrayLike | None = None,
        space: str = "text",
        **fields: object,
    ) -> Node:
        """Add one node (``Conflict`` if the id exists), with its vector if given."""
        node = {"id": id, "kind": kind, "text": text, "props": props or {}, **fields}
        vectors = None if vector is None else [vector]
        self.add_nodes([node], vectors=vectors, space=space)
        return self.get_node(id)

    def add_nodes(
        self,
        nodes: Iterable[Node | Mapping[str, object]],
        *,
        vectors: Vectors | None = None,
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
        self, nodes: Iterable[Node | Mapping[str, object]], *, vectors: Vectors | None = None,
        space: str = "text",
    ) -> list[str]:
        """Insert new nodes and replace existing ones (see ``add_nodes``)."""
        return self.add_nodes(nodes, vectors=vectors, space=space, on_conflict="replace")

    def get_node(self, id: NodeRef) -> Node:  # noqa: A002
        """The node ``id``; ``NotFound`` if it does not exist in this tenant."""
        node_id = check_id(id)
        found = self.backend.get_nodes(self.tenant_name, [node_id])
        if node_id not in found:
            raise NotFound(f"node {node_id!r} does not exist in tenant {self.tenant_name!r}")
        return found[node_id]

    def get_nodes(self, ids: Sequence[NodeRef]) -> dict[str, Node]:
        """The nodes among ``ids`` that exist, keyed by id."""
        return self.backend.get_nodes(self.tenant_name, [check_id(i) for i in ids])

    def has_node(self, id: NodeRef) -> bool:  # noqa: A002
        return bool(self.backend.get_nodes(self.tenant_name, [check_id(id)]))

    def update_node(self, id: NodeRef, **changes: object) -> Node:  # noqa: A002
        """Set the given fields (``props`` replaces the whole object); ``NotFound`` if absent.
        The fields are checked as ``add_node`` checks them."""
        node_id = check_id(id)
        check_updatable(changes)
        owner = f"node {node_id!r:.80}"
        changes.update(check_node_fields(owner, changes, inserting=False))
        check_unicode(owner, list(changes), list(changes.values()))
        return self.backend.update_node(self.tenant_name, node_id, changes)

    def delete_node(self, id: NodeRef) -> bool:  # noqa: A002
        """Delete a node with its edges and vectors; ``False`` if it did not exist."""
        return self.delete_nodes([id]) == 1

    def delete_nodes(self, ids: Sequence[NodeRef]) -> int:
        """Delete nodes with their edges and vectors; returns how many existed."""
        return self.backend.delete_nodes(self.tenant_name, unique([check_id(i) for i in ids]))

    def list_nodes(
        self, where: Where = None, *, kind: str | None = None,
        limit: int = 100, offset: int = 0,
    ) -> list[Node]:
        """Nodes matching the filter, in insertion order."""
        return self.backend.list_nodes(self.tenant_name, self._where(where, kind),
                                       check_limit(limit), check_offset(offset))

    def count(self, where: Where = None, *, kind: str | None = None) -> int:
        """How many nodes match the filter."""
        return self.backend.count_nodes(self.tenant_name, self._where(where, kind))

    @staticmethod
    def _where(where: Where, kind: str | None = None) -> FilterNode | None:
        return parse_where(where, kind)

    # -- edges -----------------------------------------------------------------------------

    def add_edge(
        self, src: NodeRef, dst: NodeRef, type: str = "related",  # noqa: A002
        weight: float = 1.0, **fields: object,
    ) -> Edge:
        """Add one edge ``src -> dst``; ``Conflict`` if (src, dst, type) exists."""
        src, dst = check_id(src), check_id(dst)
        self.add_edges([{"src": src, "dst": dst, "type": type, "weight": weight, **fields}])
        return self.get_edges(src=src, dst=dst, types=[type])[0]

    def add_edges(
        self, edges: Iterable[Edge | Mapping[str, object]], *, on_conflict: OnConflict = "error"
    ) -> int:
        """Add edges atomically; ``NotFound`` if an endpoint is missing. Returns the count."""
        if on_conflict not in CONFLICT_MODES:
            raise InvalidInput(f"on_conflict must be one of {CONFLICT_MODES}")
        batch = [_as_edge(item, self.tenant_name) for item in edges]
        if batch:
            self.backend.put_edges(self.tenant_name, batch, on_conflict)
        return len(batch)

    def upsert_edges(self, edges: Iterable[Edge | Mapping[str, object]]) -> int:
        """Insert new edges and replace the weight, confidence and props of existing ones."""
        return self.add_edges(edges, on_conflict="replace")

    def get_edges(
        self, *, src: NodeRef | None = None, dst: NodeRef | None = None,
        types: Sequence[str] | None = None, limit: int = 1000, offset: int = 0,
    ) -> list[Edge]:
        """Edges matching every given criterion, in insertion order; page with ``offset``."""
        return self.backend.get_edges(self.tenant_name, _optional_id(src), _optional_id(dst),
                                      types, check_limit(limit), check_offset(offset))

    def delete_edge(self, src: NodeRef, dst: NodeRef, type: str = "related") -> bool:  # noqa: A002
        """Delete one edge; ``False`` if it did not exist."""
        edge = (check_id(src), check_id(dst), type)
        return self.backend.delete_edges(self.tenant_name, [edge]) == 1

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
        self, id: NodeRef, vector: npt.ArrayLike, *, space: str = "text",  # noqa: A002
        model: str | None = None,
    ) -> None:
        """Set (or replace) the vector of node ``id`` in ``space``."""
        self.set_vectors([id], [vector], space=space, model=model)

    def set_vectors(
        self, ids: Sequence[NodeRef], vectors: Vectors, *, space: str = "text",
        model: str | None = None,
    ) -> None:
        """Set the vectors of many nodes atomically. ``model``, if given, must be the space's."""
        matrix = check_vectors(self.space(space), vectors, model=model, count=len(ids))
        self.backend.put_vectors(self.tenant_name, space, [check_id(i) for i in ids], matrix)

    def get_vector(self, id: NodeRef, *, space: str = "text") -> Matrix:  # noqa: A002
        """The stored vector of ``id`` in the space's storage dtype; ``NotFound`` if none."""
        node_id = check_id(id)
        found = self.backend.get_vectors(self.tenant_name, space, [node_id])
        if node_id not in found:
            raise NotFound(f"node {node_id!r} has no vector in space {space!r}")
        return found[node_id]

    def get_vectors(self, ids: Sequence[NodeRef], *, space: str = "text") -> dict[str, Matrix]:
        """The stored vectors of those ``ids`` that have one in ``space``, keyed by id."""
        self.space(space)
        return self.backend.get_vectors(self.tenant_name, space, [check_id(i) for i in ids])

    def delete_vector(self, id: NodeRef, *, space: str = "text") -> bool:  # noqa: A002
        return self.backend.delete_vectors(self.tenant_name, space, [check_id(id)]) == 1

    # -- search ----------------------------------------------------------------------------

    def vector_search(
        self, vector: npt.ArrayLike, k: int = 10, *, space: str = "text",
        where: Where = None, kind: str | None = None,
        exact: bool = False, model: str | None = None,
    ) -> list[Hit]:
        """The ``k`` nodes nearest to ``vector``, best first (score: higher is better).

        With a filter, ``k`` results come back whenever ``k`` matching nodes have vectors.
        """
        vector_space = self.space(space)
        query = check_vectors(vector_space, vector, model=model, count=1)[0]
        return self.view.search(vector_space, self.tenant_name, query,
                                check_limit(k, "k", 10_000), self._where(where, kind), exact)

    def text_search(
        self, query: str, k: int = 10, *, where: Where = None,
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
        self, id: NodeRef, *, types: Sequence[str] | None = None,  # noqa: A002
        direction: Direction = "out", where: Where = None, limit: int = 100,
    ) -> list[tuple[Node, Edge]]:
        """Nodes one edge from ``id``, with that edge, strongest first."""
        return graph.neighbors(self.backend, self.tenant_name, check_id(id), types,
                               check_direction(direction), self._where(where),
                               check_limit(limit))

    def expand(
        self, ids: Sequence[NodeRef] | NodeRef, *, hops: int = 2,
        types: Sequence[str] | None = None,
        direction: Direction = "out", where: Where = None,
        limit: int = 1000,
    ) -> graph.Subgraph:
        """Everything within ``hops`` edges of ``ids`` (at most ``limit`` nodes)."""
        seeds = [ids] if isinstance(ids, (str, Node)) else list(ids)
        return graph.expand(self.backend, self.tenant_name, [check_id(i) for i in seeds],
                            check_limit(hops, "hops", 10), types, check_direction(direction),
                            self._where(where), check_limit(limit))

    def shortest_path(
        self, start: NodeRef, goal: NodeRef, *, weighted: bool = False, max_depth: int = 6,
        types: Sequence[str] | None = None, direction: Direction = "out",
    ) -> GraphPath | None:
        """The shortest path ``start -> goal`` (fewest edges, or least total weight when
        ``weighted``), or ``None`` if there is none within ``max_depth`` edges."""
        return graph.shortest_path(self.backend, self.tenant_name, check_id(start),
                                   check_id(goal), weighted, check_limit(max_depth, "max_depth",
                                                                         100),
                                   types, check_direction(direction))
