"""Traversals built on one backend primitive, ``Backend.adjacent`` (a batch of edges around a
set of nodes), so they run unchanged on every backend; one query per hop, not per node.

Fan-out is bounded everywhere: a hub with a million edges costs at most the bound.

A backend with ``native_graph`` (PostgreSQL) runs the k-hop walk and the unweighted shortest
path in the server instead (``Backend.expand_ids``, ``Backend.shortest_path_edges``); the
expansion is the same walk with the same bounds, so results are identical.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import InvalidInput, NotFound
from ..filters import FilterNode, matches
from ..model import Direction, Edge, Node, Path
from ..storage.base import Backend

__all__ = ["Subgraph", "expand", "neighbors", "shortest_path", "walk"]

FLIP: dict[Direction, Direction] = {"out": "in", "in": "out", "both": "both"}


@dataclass(frozen=True)
class Subgraph:
    """Nodes reached from seeds, with their hop distance, and the edges that reached them."""

    nodes: list[Node]
    edges: list[Edge]
    depth: dict[str, int] = field(default_factory=dict)


def _other_end(edge: Edge, node_id: str) -> str:
    return edge.dst if edge.src == node_id else edge.src


def _node_dict(node: Node) -> dict[str, object]:
    return {**node.__dict__}


def neighbors(
    backend: Backend,
    tenant: str,
    node_id: str,
    types: Sequence[str] | None = None,
    direction: Direction = "out",
    where: FilterNode | None = None,
    limit: int = 100,
) -> list[tuple[Node, Edge]]:
    """The nodes one edge away from ``node_id`` with the edge to each, strongest first."""
    if not backend.get_nodes(tenant, [node_id]):
        raise NotFound(f"node {node_id!r} does not exist")
    edges = backend.adjacent(tenant, [node_id], types, direction, limit * 4 + 16)
    others = [_other_end(e, node_id) for e in edges]
    nodes = backend.get_nodes(tenant, others)
    result = [(nodes[o], e) for o, e in zip(others, edges, strict=True) if o in nodes]
    if where is not None:
        result = [(n, e) for n, e in result if matches(where, _node_dict(n))]
    return result[:limit]


def expand(
    backend: Backend,
    tenant: str,
    seeds: Sequence[str],
    hops: int = 2,
    types: Sequence[str] | None = None,
    direction: Direction = "out",
    where: FilterNode | None = None,
    limit: int = 1000,
) -> Subgraph:
    """Breadth-first k-hop expansion from ``seeds``, at most ``limit`` nodes (strongest edges
    first at each hop). ``where`` filters the nodes returned, not the ones walked through;
    seeds are always returned."""
    found = backend.get_nodes(tenant, list(seeds))
    missing = [s for s in seeds if s not in found]
    if missing:
        raise NotFound(f"seed node(s) {missing[:5]} do not exist")
    depth, edges = walk(backend, tenant, seeds, hops, types, direction, limit)
    nodes = backend.get_nodes(tenant, list(depth))
    result = [nodes[i] for i in depth if i in nodes]
    if where is not None:
        result = [n for n in result if depth[n.id] == 0 or matches(where, _node_dict(n))]
    kept = {n.id for n in result}
    return Subgraph(result, [e for e in edges if e.src in kept and e.dst in kept],
                    {i: d for i, d in depth.items() if i in kept})


def walk(
    backend: Backend, tenant: str, seeds: Sequence[str], hops: int,
    types: Sequence[str] | None, direction: Direction, limit: int,
) -> tuple[dict[str, int], list[Edge]]:
    """The walk behind ``expand`` without fetching nodes: each reached id with its hop (seeds
    at 0, in discovery order) and the edge that first reached it. Seeds must exist."""
    if backend.native_graph:  # the same walk, in the server (PostgreSQL: a recursive CTE)
        return backend.expand_ids(tenant, seeds, hops, types, direction, limit)
    return _levels(backend, tenant, seeds, hops, types, direction, limit)


def _levels(
    backend: Backend, tenant: str, seeds: Sequence[str], hops: int,
    types: Sequence[str] | None, direction: Direction, limit: int,
) -> tuple[dict[str, int], list[Edge]]:
    """Breadth-first levels: each node's hop in discovery order, and the edge reaching it."""
    depth = {s: 0 for s in seeds}
    edges: list[Edge] = []
    frontier = list(dict.fromkeys(seeds))
    for hop in range(1, hops + 1):
        room = limit - len(depth)
        if room <= 0 or not frontier:
            break
        next_frontier = []
        for edge in backend.adjacent(tenant, frontier, types, direction, room * 8 + 64):
            for end in (edge.src, edge.dst):
                if end not in depth and len(depth) < limit:
                    depth[end] = hop
                    next_frontier.append(end)
                    edges.append(edge)
        frontier = next_frontier
    return depth, edges


def shortest_path(
    backend: Backend,
    tenant: str,
    start: str,
    goal: str,
    weighted: bool = False,
    max_depth: int = 6,
    types: Sequence[str] | None = None,
    direction: Direction = "out",
    fanout: int = 100_000,
) -> Path | None:
    """The shortest path from ``start`` to ``goal``, or ``None`` within ``max_depth`` hops.

    Unweighted: bidirectional breadth-first search (fewest edges). Weighted: Dijkstra with
    each edge's ``weight`` as its cost (weights must be >= 0).
    """
    found = backend.get_nodes(tenant, [start, goal])
    for node_id in (start, goal):
        if node_id not in found:
            raise NotFound(f"node {node_id!r} does not exist")
    if start == goal:
        return Path([found[start]], [])
    if backend.native_graph and not weighted:
        steps = backend.shortest_path_edges(tenant, start, goal, max_depth, types, direction)
    else:
        search = _dijkstra if weighted else _bidirectional_bfs
        steps = search(backend, tenant, start, goal, max_depth, types, direction, fanout)
    if steps is None:
        return None
    ids = [start] + [_other_end(e, prev) for prev, e in _walk(start, steps)]
    nodes = backend.get_nodes(tenant, ids)
    return Path([nodes[i] for i in ids], steps)


def _walk(start: str, steps: list[Edge]) -> list[tuple[str, Edge]]:
    out, current = [], start
    for edge in steps:
        out.append((current, edge))
        current = _other_end(edge, current)
    return out


def _bidirectional_bfs(
    backend: Backend, tenant: str, start: str, goal: str, max_depth: int,
    types: Sequence[str] | None, direction: Direction, fanout: int,
) -> list[Edge] | None:
    parents: list[dict[str, Edge | None]] = [{start: None}, {goal: None}]
    frontiers = [[start], [goal]]
    directions = [direction, FLIP[direction]]
    for _ in range(max_depth):
        side = 0 if len(frontiers[0]) <= len(frontiers[1]) else 1
        if not frontiers[side]:
            return None
        seen, other = parents[side], parents[1 - side]
        next_frontier, current = [], set(frontiers[side])
        for edge in backend.adjacent(tenant, frontiers[side], types, directions[side], fanout):
            far = _far_end(edge, directions[side], current)
            if far is None or far in seen:
                continue
            seen[far] = edge
            next_frontier.append(far)
            if far in other:
                return _join(parents, far)
        frontiers[side] = next_frontier
    return None


def _far_end(edge: Edge, direction: Direction, frontier: set[str]) -> str | None:
    """The end of ``edge`` away from the frontier, following ``direction``."""
    if direction == "out":
        return edge.dst if edge.src in frontier else None
    if direction == "in":
        return edge.src if edge.dst in frontier else None
    return edge.dst if edge.src in frontier else edge.src


def _join(parents: list[dict[str, Edge | None]], meet: str) -> list[Edge]:
    """The edges start -> meet (from the forward parents) then meet -> goal (backward)."""
    forward, node = [], meet
    while (edge := parents[0][node]) is not None:
        forward.append(edge)
        node = _other_end(edge, node)
    backward, node = [], meet
    while (edge := parents[1][node]) is not None:
        backward.append(edge)
        node = _other_end(edge, node)
    return forward[::-1] + backward


def _dijkstra(
    backend: Backend, tenant: str, start: str, goal: str, max_depth: int,
    types: Sequence[str] | None, direction: Direction, fanout: int,
) -> list[Edge] | None:
    """Bidirectional Dijkstra: settle one node at a time from whichever side has the nearer
    frontier, and stop once the two frontiers together cannot beat the best meeting found."""
    sides = [_DijkstraSide(start, direction), _DijkstraSide(goal, FLIP[direction])]
    best, meet = float("inf"), None
    while sides[0].heap and sides[1].heap:
        if sides[0].heap[0][0] + sides[1].heap[0][0] >= best:
            break
        index = 0 if sides[0].heap[0][0] <= sides[1].heap[0][0] else 1
        side, other = sides[index], sides[1 - index]
        node = side.settle_next()
        if node is None or side.hops[node] >= max_depth:
            continue
        for edge in backend.adjacent(tenant, [node], types, side.direction, fanout):
            if edge.weight < 0:
                raise InvalidInput(f"edge {edge.src}->{edge.dst} has a negative weight")
            far = _other_end(edge, node)
            side.relax(node, far, edge)
            if far in other.dist and side.dist[far] + other.dist[far] < best:
                hops = side.hops[far] + other.hops[far]
                if hops <= max_depth:
                    best, meet = side.dist[far] + other.dist[far], far
    if meet is None:
        return None
    return _join([sides[0].parent, sides[1].parent], meet)


class _DijkstraSide:
    """One direction of a bidirectional Dijkstra: distances, parents, hop counts, a heap."""

    def __init__(self, source: str, direction: Direction) -> None:
        self.direction = direction
        self.dist: dict[str, float] = {source: 0.0}
        self.parent: dict[str, Edge | None] = {source: None}
        self.hops: dict[str, int] = {source: 0}
        self.done: set[str] = set()
        self._counter = itertools.count()
        self.heap: list[tuple[float, int, str]] = [(0.0, next(self._counter), source)]

    def settle_next(self) -> str | None:
        cost, _, node = heapq.heappop(self.heap)
        if node in self.done or cost > self.dist[node]:
            return None
        self.done.add(node)
        return node

    def relax(self, node: str, far: str, edge: Edge) -> None:
        cost = self.dist[node] + edge.weight
        if far not in self.done and cost < self.dist.get(far, float("inf")):
            self.dist[far], self.parent[far] = cost, edge
            self.hops[far] = self.hops[node] + 1
            heapq.heappush(self.heap, (cost, next(self._counter), far))
