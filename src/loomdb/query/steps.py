"""What each step of a plan does: the runners the executor calls, by step name.

Each runner reads and extends one ``RunState`` (anchors, the graph neighbourhood, candidates,
one ranking per retriever, the hits) and returns how many rows it produced, which the executor
records on the step. ``STEPS`` holds the runners every strategy may use; a strategy adds
runners of its own through ``Strategy.runners``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidInput
from ..filters import FilterNode, all_of, matches, parse_filter
from ..graph.activation import spread_activation
from ..graph.traversal import walk
from ..model import Hit, Node
from ..similarity import Matrix, exact_scores
from ..store import Store
from .costs import EXPAND_LIMIT
from .fusion import reciprocal_rank_fusion
from .personalize import load_policy, rerank
from .plan import Query, Step

__all__ = ["STEPS", "RunState", "StepRunner"]

MAX_ANCHORS = 100
MULTI_HOP_SEEDS = 10
IN_LIST_LIMIT = 10_000  # values one $in may hold (filters.py's limit)


@dataclass
class RunState:
    """What the steps of one execution share; ``hits`` is the answer once the plan ran."""

    store: Store
    query: Query
    where: FilterNode | None  # the query's where= and kind=, parsed once by the engine
    embed: Callable[[str], Matrix]
    fetch: int = 10
    anchors: list[str] = field(default_factory=list)
    reach: dict[str, float] = field(default_factory=dict)  # node -> graph nearness
    candidates: list[str] | None = None
    vector: Matrix | None = None
    rankings: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)


StepRunner = Callable[[RunState, Step], int]
"""Runs one step of a plan on the shared state; returns the rows it produced."""


def _node_row(node: Node) -> dict[str, object]:
    return {**node.__dict__}


# -- graph ---------------------------------------------------------------------------------

def _anchors(state: RunState, step: Step) -> int:
    graph = state.query.graph
    assert graph is not None
    found = state.store.list_nodes(graph.matching, limit=MAX_ANCHORS)
    state.anchors = [n.id for n in found]
    return len(state.anchors)


def _expand(state: RunState, step: Step) -> int:
    """The neighbourhood as ids with their nearness (no node is decoded here); the graph
    ranking keeps the ones that pass the filter, checked in the database."""
    graph = state.query.graph
    assert graph is not None
    seeds = list(graph.anchors) or state.anchors
    existing = state.store.get_nodes(seeds)
    seeds = [s for s in seeds if s in existing]
    if not seeds:
        return 0
    depth, edges = walk(state.store.backend, state.store.tenant_name, seeds, graph.hops,
                        list(graph.types) if graph.types else None, graph.direction,
                        EXPAND_LIMIT)
    strongest: dict[str, float] = {}
    for edge in edges:
        for end in (edge.src, edge.dst):
            strongest[end] = max(strongest.get(end, 0.0), edge.weight)
    for node_id, hop in depth.items():
        state.reach[node_id] = 1.0 / (1.0 + hop) + 1e-3 * min(strongest.get(node_id, 0.0), 100.0)
    kept = state.store.backend.filter_ids(state.store.tenant_name, list(depth), state.where)
    ranked = sorted(kept, key=lambda i: -state.reach[i])
    state.rankings["graph"] = [(i, state.reach[i]) for i in ranked]
    return len(state.reach)


def _filter_only(state: RunState, step: Step) -> int:
    found = state.store.list_nodes(state.where, limit=min(state.fetch, 100_000))
    for node in found:
        state.nodes[node.id] = node
    state.rankings["graph"] = [(n.id, 1.0) for n in found]
    return len(found)


def _candidates(state: RunState, step: Step) -> int:
    if state.query.graph is not None:
        state.candidates = [i for i, _ in state.rankings.get("graph", [])]
        return len(state.candidates)
    found = state.store.list_nodes(state.where, limit=IN_LIST_LIMIT)
    state.nodes.update((n.id, n) for n in found)
    state.candidates = [n.id for n in found]
    return len(state.candidates)


# -- dense and lexical ---------------------------------------------------------------------

def _embed(state: RunState, step: Step) -> int:
    semantic = state.query.semantic
    assert semantic is not None and semantic.text is not None
    state.vector = state.embed(semantic.text)
    return 1


def _query_vector(state: RunState) -> Matrix:
    semantic = state.query.semantic
    assert semantic is not None
    if state.vector is None:
        state.vector = np.asarray(semantic.vector, dtype=np.float32)
    return state.vector


def _dense(state: RunState, step: Step) -> int:
    semantic = state.query.semantic
    assert semantic is not None
    vector = _query_vector(state)
    if state.candidates is not None:
        ranking = _dense_over_candidates(state, vector)
    else:
        k = max(1, min(semantic.k or state.fetch, 10_000))
        hits = state.store.vector_search(vector, k=k, space=semantic.space,
                                         where=_pushed_down(state))
        state.nodes.update((h.id, h.node) for h in hits)
        ranking = [(h.id, h.score) for h in hits]
    if semantic.threshold is not None:
        ranking = [(i, s) for i, s in ranking if s >= semantic.threshold]
    state.rankings["dense"] = ranking
    return len(ranking)


def _dense_over_candidates(state: RunState, vector: Matrix) -> list[tuple[str, float]]:
    semantic = state.query.semantic
    assert semantic is not None and state.candidates is not None
    space = state.store.space(semantic.space)
    stored = state.store.get_vectors(state.candidates, space=space.name)
    if not stored:
        return []
    ids = list(stored)
    matrix = np.stack([np.asarray(stored[i], dtype=np.float32) for i in ids])
    if matrix.shape[1] != len(vector):
        raise InvalidInput(f"query vector has {len(vector)} dimensions; space "
                           f"{space.name!r} has {matrix.shape[1]}")
    scores = exact_scores(space, np.asarray(vector, dtype=np.float32), matrix)
    order = np.argsort(-scores, kind="stable")[: semantic.k or len(ids)]
    return [(ids[i], float(scores[i])) for i in order]


def _pushed_down(state: RunState) -> FilterNode | None:
    """A restricting graph part whose neighbourhood is known and small enough becomes an id
    filter on the index searches, so they rank within it exactly instead of over-fetching."""
    graph = state.query.graph
    if graph is None or not graph.restrict or state.candidates is not None \
            or not state.reach or len(state.reach) > IN_LIST_LIMIT:
        return state.where
    return all_of(state.where, parse_filter({"id": {"$in": list(state.reach)}}))


def _lexical(state: RunState, step: Step) -> int:
    """BM25 over the candidates (or the known neighbourhood) when there are some, scoring just
    those texts; over the whole index otherwise."""
    lexical = state.query.lexical
    assert lexical is not None
    k = max(1, min(lexical.k or state.fetch, 10_000))
    ids = _lexical_scope(state)
    if ids is not None:
        tenant = state.store.tenant_name
        state.rankings["lexical"] = state.store.backend.text_scores(tenant, lexical.text, ids,
                                                                    max(k, len(ids)))
        return len(state.rankings["lexical"])
    hits = state.store.text_search(lexical.text, k=k, where=state.where)
    state.nodes.update((h.id, h.node) for h in hits)
    state.rankings["lexical"] = [(h.id, h.score) for h in hits]
    return len(hits)


def _lexical_scope(state: RunState) -> list[str] | None:
    if state.candidates is not None:
        return state.candidates
    graph = state.query.graph
    if graph is None or not graph.restrict or not state.reach \
            or len(state.reach) > IN_LIST_LIMIT:
        return None
    return [i for i, _ in state.rankings.get("graph", [])]  # the neighbourhood, filtered


# -- fusion, multi-hop, personalisation, paging --------------------------------------------

def _fuse(state: RunState, step: Step) -> int:
    rankings = dict(state.rankings)
    graph = state.query.graph
    if graph is not None and graph.restrict and state.candidates is None:
        allowed = set(state.reach)
        rankings = {name: [(i, s) for i, s in ranking if i in allowed]
                    for name, ranking in rankings.items()}
    if graph is not None and not graph.restrict:
        rankings["graph"] = [(i, s) for i, s in rankings.get("graph", [])]
    fused = reciprocal_rank_fusion(rankings, state.query.weights)[:state.fetch]
    missing = [f.id for f in fused if f.id not in state.nodes]
    state.nodes.update(state.store.get_nodes(missing))
    single = len(rankings) == 1
    state.hits = [
        Hit.of(state.nodes[f.id], next(iter(f.scores.values())) if single else f.score,
               {**f.scores, "rrf": f.score, "agreement": float(f.agreement)})
        for f in fused if f.id in state.nodes]
    return len(state.hits)


def _multi_hop(state: RunState, step: Step) -> int:
    """Passages that share entities with the top hits join the fusion as one more ranking."""
    top = state.hits[:MULTI_HOP_SEEDS]
    if not top:
        return 0
    best = max(h.scores.get("rrf", h.score) for h in top) or 1.0
    seeds = {h.id: h.scores.get("rrf", h.score) / best for h in top}
    energy = spread_activation(state.store.backend, state.store.tenant_name, seeds, hops=2)
    found = state.store.get_nodes(list(energy))
    where = state.where
    ranked = sorted((i for i in energy if i in found and (
        where is None or matches(where, _node_row(found[i])))), key=lambda i: -energy[i])
    state.nodes.update(found)
    # the seeds lead their own ranking: activation adds passages beside them, never above
    # them (left out, RRF pushed mere entity-sharers over the hits they came from)
    seeded = [(i, 1.0 + s) for i, s in sorted(seeds.items(), key=lambda kv: -kv[1])]
    state.rankings["activation"] = seeded + [(i, energy[i]) for i in ranked if i not in seeds]
    return _fuse(state, step)


def _personalize(state: RunState, step: Step) -> int:
    if state.query.user is not None:
        state.hits = rerank(state.hits, load_policy(state.store, state.query.user))
    return len(state.hits)


def _page(state: RunState, step: Step) -> int:
    start = state.query.offset
    state.hits = state.hits[start:start + state.query.limit]
    return len(state.hits)


STEPS: dict[str, StepRunner] = {
    "anchors": _anchors, "expand": _expand, "filter": _filter_only, "candidates": _candidates,
    "embed": _embed, "dense": _dense, "lexical": _lexical, "fuse": _fuse,
    "multi-hop": _multi_hop, "personalize": _personalize, "page": _page,
}
