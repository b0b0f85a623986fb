"""Reasoning paths: the strongest chains of edges between two entities or concepts, with the
passages that support each step.

The neighbourhoods of both ends are gathered (bounded), and the paths are ranked by strength:
an edge of weight ``w`` has strength ``w / (1 + w)`` (so five co-mentions are stronger than
one, with diminishing returns) and a path's strength is the product of its edges'. The k
strongest simple paths are the k shortest under cost ``-log(strength)``, found with networkx
(Yen's algorithm). A ``co_occurs`` step is supported by the passages that mention both
entities; a ``mentions`` step by the passage itself.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InvalidInput, NotFound
from ..graph import expand
from ..model import Edge, Node
from ..store import Store
from ..weaver.linking import CO_OCCURS, MENTIONS, mentioners

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["ReasoningPath", "ReasoningStep", "strongest_paths"]

NEIGHBOURHOOD = 5000   # nodes gathered around each end
SUPPORT = 3            # passages shown per step


@dataclass(frozen=True)
class ReasoningStep:
    """One edge of a path, walked from ``source`` to ``target``, with its evidence."""

    source: Node
    target: Node
    edge: Edge
    strength: float
    support: list[Node]


@dataclass(frozen=True)
class ReasoningPath:
    """A chain from one end to the other; ``strength`` is the product of its steps'."""

    steps: list[ReasoningStep]
    strength: float

    @property
    def nodes(self) -> list[Node]:
        return [self.steps[0].source, *(s.target for s in self.steps)] if self.steps else []


def _strength(edge: Edge) -> float:
    weight = max(edge.weight, 1e-6)
    return weight / (1.0 + weight)


def strongest_paths(store: Store, a: str, b: str, *, paths: int = 3,
                    max_hops: int = 4) -> list[ReasoningPath]:
    """Up to ``paths`` strongest paths from ``a`` to ``b`` with at most ``max_hops`` edges,
    strongest first; ``[]`` when they are not connected within that."""
    import networkx as nx

    if not 1 <= paths <= 20 or not 1 <= max_hops <= 6:
        raise InvalidInput("paths must be within 1..20 and max_hops within 1..6")
    found = store.get_nodes([a, b])
    missing = [n for n in (a, b) if n not in found]
    if missing:
        raise NotFound(f"node(s) {missing} do not exist in tenant {store.tenant_name!r}")
    if a == b:
        raise InvalidInput("reason() needs two different nodes")
    graph, edges = _neighbourhood(store, a, b, max_hops)
    if a not in graph or b not in graph or not nx.has_path(graph, a, b):
        return []
    result = []
    for route in itertools.islice(nx.shortest_simple_paths(graph, a, b, weight="cost"), 200):
        if len(route) - 1 <= max_hops:
            result.append(_path(store, route, edges))
            if len(result) == paths:
                break
    return sorted(result, key=lambda p: -p.strength)


def _neighbourhood(store: Store, a: str, b: str,
                   max_hops: int) -> tuple[nx.Graph[str], dict[frozenset[str], Edge]]:
    import networkx as nx

    reach = (max_hops + 1) // 2
    graph: nx.Graph[str] = nx.Graph()
    best: dict[frozenset[str], Edge] = {}
    for end in (a, b):
        sub = expand(store.backend, store.tenant_name, [end], reach, None, "both", None,
                     NEIGHBOURHOOD)
        for edge in sub.edges:
            key = frozenset((edge.src, edge.dst))
            if len(key) == 2 and (key not in best or _strength(edge) > _strength(best[key])):
                best[key] = edge
    for edge in best.values():
        graph.add_edge(edge.src, edge.dst, cost=-math.log(_strength(edge)))
    return graph, best


def _path(store: Store, route: list[str], edges: dict[frozenset[str], Edge]) -> ReasoningPath:
    nodes = store.get_nodes(route)
    steps = []
    for here, there in itertools.pairwise(route):
        edge = edges[frozenset((here, there))]
        steps.append(ReasoningStep(nodes[here], nodes[there], edge, _strength(edge),
                                   _support(store, edge, nodes)))
    return ReasoningPath(steps, math.prod(s.strength for s in steps))


def _support(store: Store, edge: Edge, nodes: dict[str, Node]) -> list[Node]:
    """The passages behind one step."""
    if edge.type == CO_OCCURS:
        shared = set(mentioners(store, edge.src)) & set(mentioners(store, edge.dst))
        found = store.get_nodes(sorted(shared)[:SUPPORT])
        return list(found.values())
    if edge.type == MENTIONS and edge.src in nodes:
        return [nodes[edge.src]]
    return []
