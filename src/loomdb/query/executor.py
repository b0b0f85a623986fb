"""The executor: runs a plan's steps in order, timing each, and fuses the rankings into hits.

Each step reads and extends one ``_State`` (anchors, the graph neighbourhood, candidates, one
ranking per retriever, the hits). Every step records its actual time and output size on the
plan, and the cost model learns from them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidInput
from ..filters import FilterNode, all_of, matches, parse_filter
from ..graph.activation import spread_activation
from ..graph.traversal import walk
from ..ml.bridge import Matrix
from ..model import Hit, Node
from ..similarity import exact_scores
from ..store import Store
from .fusion import reciprocal_rank_fusion
from .personalize import load_policy, rerank
from .plan import Plan, Query, Step
from .planner import EXPAND_LIMIT, CostModel

__all__ = ["execute"]

MAX_ANCHORS = 100
MULTI_HOP_SEEDS = 10
IN_LIST_LIMIT = 10_000  # values one $in may hold (filters.py's limit)


@dataclass
class _State:
    store: Store
    query: Query
    where: FilterNode | None  # the query's where= and kind=, parsed once by the engine
    embed: Callable[[str], Matrix]
    fetch: int = 10
    anchors: list[str] = field(default_factory=list)
    reach: dict[str, float] = field(default_factory=dict)  # node -> graph nearness
    candidates: list[str] | None = None
    vector: Any = None
    rankings: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)


def execute(store: Store, query: Query, plan: Plan, where: FilterNode | None,
            embed: Callable[[str], Matrix], costs: CostModel) -> list[Hit]:
    """Run ``plan`` for ``query`` in ``store``'s tenant; returns the page of hits and fills in
    the plan's actuals."""
    state = _State(store, query, where, embed, fetch=(query.limit + query.offset) * plan.overfetch)
    started = time.perf_counter()
    for step in plan.steps:
        begun = time.perf_counter()
        STEPS[step.name](state, step)
        step.actual_ms = (time.perf_counter() - begun) * 1000
        step.actual_rows = _rows(state, step.name)
        costs.observe(step)
    plan.actual_ms = (time.perf_counter() - started) * 1000
    return state.hits


def _rows(state: _State, name: str) -> int:
    if name in ("dense", "lexical", "graph-rank"):
        retriever = {"dense": "dense", "lexical": "lexical"}.get(name, "graph")
        return len(state.rankings.get(retriever, []))
    if name == "expand":
        return len(state.reach)
    if name == "candidates":
        return len(state.candidates or [])
    if name == "anchors":
        return len(state.anchors)
    return len(state.hits)


def _node_row(node: Node) -> dict[str, Any]:
    return {**node.__dict__}


# -- graph ---------------------------------------------------------------------------------

def _anchors(state: _State, step: Step) -> None:
    graph = state.query.graph
    assert graph is not None
    found = state.store.list_nodes(graph.matching, limit=MAX_ANCHORS)
    state.anchors = [n.id for n in found]


def _expand(state: _State, step: Step) -> None:
    """The neighbourhood as ids with their nearness (no node is decoded here); the graph
    ranking keeps the ones that pass the filter, checked in the database."""
    graph = state.query.graph
    assert graph is not None
    seeds = list(graph.anchors) or state.anchors
    existing = state.store.get_nodes(seeds)
    seeds = [s for s in seeds if s in existing]
    if not seeds:
        return
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


def _filter_only(state: _State, step: Step) -> None:
    found = state.store.list_nodes(state.where, limit=min(state.fetch, 100_000))
    for node in found:
        state.nodes[node.id] = node
    state.rankings["graph"] = [(n.id, 1.0) for n in found]


def _candidates(state: _State, step: Step) -> None:
    if state.query.graph is not None:
        state.candidates = [i for i, _ in state.rankings.get("graph", [])]
        return
    found = state.store.list_nodes(state.where, limit=IN_LIST_LIMIT)
    state.nodes.update((n.id, n) for n in found)
    state.candidates = [n.id for n in found]


# -- dense and lexical ---------------------------------------------------------------------

def _embed(state: _State, step: Step) -> None:
    semantic = state.query.semantic
    assert semantic is not None and semantic.text is not None
    state.vector = state.embed(semantic.text)


def _query_vector(state: _State) -> Any:
    semantic = state.query.semantic
    assert semantic is not None
    if state.vector is None:
        state.vector = np.asarray(semantic.vector, dtype=np.float32)
    return state.vector


def _dense(state: _State, step: Step) -> None:
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


def _dense_over_candidates(state: _State, vector: Any) -> list[tuple[str, float]]:
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


def _pushed_down(state: _State) -> FilterNode | None:
    """A restricting graph part whose neighbourhood is known and small enough becomes an id
    filter on the index searches, so they rank within it exactly instead of over-fetching."""
    graph = state.query.graph
    if graph is None or not graph.restrict or state.candidates is not None \
            or not state.reach or len(state.reach) > IN_LIST_LIMIT:
        return state.where
    return all_of(state.where, parse_filter({"id": {"$in": list(state.reach)}}))


def _lexical(state: _State, step: Step) -> None:
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
        return
    hits = state.store.text_search(lexical.text, k=k, where=state.where)
    state.nodes.update((h.id, h.node) for h in hits)
    state.rankings["lexical"] = [(h.id, h.score) for h in hits]


def _lexical_scope(state: _State) -> list[str] | None:
    if state.candidates is not None:
        return state.candidates
    graph = state.query.graph
    if graph is None or not graph.restrict or not state.reach \
            or len(state.reach) > IN_LIST_LIMIT:
        return None
    return [i for i, _ in state.rankings.get("graph", [])]  # the neighbourhood, filtered


# -- fusion, multi-hop, personalisation, paging --------------------------------------------

def _fuse(state: _State, step: Step) -> None:
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


def _multi_hop(state: _State, step: Step) -> None:
    """Passages that share entities with the top hits join the fusion as one more ranking."""
    top = state.hits[:MULTI_HOP_SEEDS]
    if not top:
        return
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
    _fuse(state, step)


def _personalize(state: _State, step: Step) -> None:
    if state.query.user is not None:
        state.hits = rerank(state.hits, load_policy(state.store, state.query.user))


def _page(state: _State, step: Step) -> None:
    start = state.query.offset
    state.hits = state.hits[start:start + state.query.limit]


def _cache(state: _State, step: Step) -> None:  # answered by the engine before execution
    return


STEPS: dict[str, Callable[[_State, Step], None]] = {
    "anchors": _anchors, "expand": _expand, "filter": _filter_only, "candidates": _candidates,
    "embed": _embed, "dense": _dense, "lexical": _lexical, "fuse": _fuse,
    "multi-hop": _multi_hop, "personalize": _personalize, "page": _page, "cache": _cache,
}
