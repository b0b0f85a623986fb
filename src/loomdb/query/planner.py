"""The cost-based planner: which strategy answers a query fastest, with how much over-fetch.

Strategies (``plan.STRATEGIES``):

- ``vector-only``, ``lexical-only``, ``graph-only``: one retriever.
- ``hybrid-parallel``: every retriever runs on its own (each with the filter), then fusion;
  a graph part restricts or ranks afterwards. Good when the filter and the neighbourhood are
  broad: the indexes do the narrowing.
- ``hybrid-sequential``: filter -> graph neighbourhood -> exact dense and lexical scoring of
  just those candidates -> fusion. Good when the neighbourhood (times the filter's
  selectivity) is small: scoring a few hundred candidates exactly beats two index searches
  that must over-fetch past everything the neighbourhood will throw away.
- ``cached-only``: the result cache has the answer for this exact query at this ``seq``.

Costs are milliseconds from a small model of each step, fed by the statistics (nodes per kind,
filter selectivity from a sample, average degree per edge type, index sizes) and corrected by
the latencies the executor observes: each step keeps a moving average of actual/estimated,
which scales its future estimates.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from ..config import IndexSettings
from ..filters import FilterNode
from .plan import Plan, Query, Step
from .statistics import TenantStats

__all__ = ["CostModel", "Planner"]

EXPAND_LIMIT = 5_000       # nodes a graph part may reach (strongest edges first)
MAX_OVERFETCH = 20
ADAPT_RATE = 0.2           # weight of the newest observation in the moving average


@dataclass
class CostModel:
    """Milliseconds per unit of work, measured on the development machine (2 cores) and then
    corrected per step by what the executor observes."""

    embed: float = 6.0                 # one query text through the local embedder
    ann_base: float = 0.8              # one HNSW search
    ann_per_result: float = 0.01
    exact_per_vector: float = 0.004    # fetch + score one stored vector
    scan_per_node: float = 0.0006      # evaluating a props filter over the tenant's nodes
    lexical_base: float = 1.5          # one FTS5 BM25 query
    lexical_per_candidate: float = 0.002
    expand_per_edge: float = 0.004
    fetch_per_node: float = 0.01
    fuse_per_hit: float = 0.002
    activation_per_edge: float = 0.004

    def __post_init__(self) -> None:
        self._correction: dict[str, float] = {}
        self._lock = threading.Lock()

    def corrected(self, step: str, estimate: float) -> float:
        return estimate * self._correction.get(step, 1.0)

    def observe(self, step: Step) -> None:
        """Move ``step``'s correction towards actual/estimated (bounded, so one slow outlier
        cannot swing the planner)."""
        if step.actual_ms is None or step.estimate_ms <= 0:
            return
        raw = step.estimate_ms / self._correction.get(step.name, 1.0)
        if raw <= 0:
            return
        ratio = min(max(step.actual_ms / raw, 0.05), 20.0)
        with self._lock:
            old = self._correction.get(step.name, 1.0)
            self._correction[step.name] = (1 - ADAPT_RATE) * old + ADAPT_RATE * ratio

    def corrections(self) -> dict[str, float]:
        with self._lock:
            return dict(self._correction)


class Planner:
    """Builds the cheapest plan for a query from a tenant's statistics."""

    def __init__(self, index: IndexSettings, costs: CostModel | None = None) -> None:
        self.index = index
        self.costs = costs or CostModel()

    def plan(self, query: Query, stats: TenantStats, where: FilterNode | None,
             cached: bool) -> Plan:
        """The chosen plan; ``alternatives`` holds every feasible strategy's estimate."""
        candidates = self._candidates(query, stats, where)
        if cached and query.use_cache:
            candidates["cached-only"] = self._plan_cached()
        forced: str | None = query.strategy
        if forced is not None and forced not in candidates:
            candidates[forced] = self._build(forced, query, stats, where)
        chosen: str = forced or min(candidates, key=lambda name: candidates[name].estimate_ms)
        plan = candidates[chosen]
        plan.alternatives = {name: p.estimate_ms for name, p in candidates.items()}
        plan.reason = self._reason(chosen, forced, query, stats, where)
        return plan

    # -- candidates ------------------------------------------------------------------------

    def _candidates(self, query: Query, stats: TenantStats,
                    where: FilterNode | None) -> dict[str, Plan]:
        names: list[str] = []
        retrievers = query.retrievers
        if retrievers == ("dense",):
            names = ["vector-only"]
        elif retrievers == ("lexical",):
            names = ["lexical-only"]
        elif retrievers == ("graph",) or not retrievers:
            names = ["graph-only"]
        else:
            names = ["hybrid-parallel"]
            if query.graph is not None or self._filtered_size(query, stats, where) \
                    <= self.index.exact_threshold:
                names.append("hybrid-sequential")
        return {name: self._build(name, query, stats, where) for name in names}

    def _build(self, name: str, query: Query, stats: TenantStats,
               where: FilterNode | None) -> Plan:
        builders = {"vector-only": self._plan_single, "lexical-only": self._plan_single,
                    "graph-only": self._plan_graph_only, "hybrid-parallel": self._plan_parallel,
                    "hybrid-sequential": self._plan_sequential}
        if name == "cached-only":
            return self._plan_cached()
        return builders[name](name, query, stats, where)

    # -- estimates -------------------------------------------------------------------------

    def _filtered_size(self, query: Query, stats: TenantStats, where: FilterNode | None) -> int:
        return max(1, int(stats.nodes * stats.selectivity(where, query.kind)))

    def _reach(self, query: Query, stats: TenantStats) -> int:
        """Nodes a graph part reaches: anchors times (1 + degree) per hop, bounded."""
        graph = query.graph
        if graph is None:
            return 0
        anchors = len(graph.anchors) if graph.anchors else max(
            1, int(stats.nodes * stats.selectivity(None, None) * 0.001))
        degree = stats.degree(graph.types)
        if graph.direction != "both":
            degree /= 2
        return int(min(EXPAND_LIMIT, anchors * (1 + degree) ** graph.hops))

    def _step(self, name: str, estimate: float, rows: int, **detail: object) -> Step:
        return Step(name, dict(detail), self.costs.corrected(name, estimate), rows)

    def _overfetch(self, query: Query, stats: TenantStats, where: FilterNode | None,
                   personalized: bool) -> int:
        """Candidates per result for what later steps throw away: a graph restriction applied
        after the index search keeps only the neighbourhood's share; exclusions drop some."""
        factor = 2.0
        if query.graph is not None and query.graph.restrict:
            share = self._reach(query, stats) / max(self._filtered_size(query, stats, where), 1)
            factor = max(factor, 1.0 / max(min(share, 1.0), 1.0 / MAX_OVERFETCH))
        if personalized:
            factor *= 1.5
        if query.multi_hop:
            factor *= 1.5
        return int(min(MAX_OVERFETCH, math.ceil(factor)))

    def _semantic_steps(self, query: Query, stats: TenantStats, where: FilterNode | None,
                        fetch: int) -> list[Step]:
        steps: list[Step] = []
        semantic = query.semantic
        if semantic is None:
            return steps
        if semantic.text is not None:
            steps.append(self._step("embed", self.costs.embed, 1))
        size = self._filtered_size(query, stats, where)
        filter_cost = 0.0 if where is None else self.costs.scan_per_node * stats.nodes
        if where is not None and size <= self.index.exact_threshold:
            cost = filter_cost + self.costs.exact_per_vector * size
            steps.append(self._step("dense", cost, min(fetch, size), mode="exact", k=fetch))
        else:
            cost = filter_cost + self.costs.ann_base + self.costs.ann_per_result * fetch
            steps.append(self._step("dense", cost, fetch, mode="ann", k=fetch))
        return steps

    def _lexical_step(self, query: Query, stats: TenantStats, where: FilterNode | None,
                      fetch: int) -> list[Step]:
        if query.lexical is None:
            return []
        filter_cost = 0.0 if where is None else self.costs.scan_per_node * stats.nodes * 0.1
        return [self._step("lexical", self.costs.lexical_base + filter_cost, fetch, k=fetch)]

    def _graph_steps(self, query: Query, stats: TenantStats) -> list[Step]:
        if query.graph is None:
            return []
        reach = self._reach(query, stats)
        steps = []
        if query.graph.matching is not None:
            steps.append(self._step("anchors", self.costs.scan_per_node * stats.nodes, 100))
        edges = reach * max(stats.degree(query.graph.types), 1.0)
        steps.append(self._step("expand", self.costs.expand_per_edge * edges
                                + self.costs.fetch_per_node * reach, reach,
                                hops=query.graph.hops))
        return steps

    def _tail(self, query: Query, fetch: int, personalized: bool) -> list[Step]:
        steps = [self._step("fuse", self.costs.fuse_per_hit * fetch * 3, fetch)]
        if query.multi_hop:
            steps.append(self._step("multi-hop", self.costs.activation_per_edge * fetch * 20,
                                    fetch))
        if personalized:
            steps.append(self._step("personalize", self.costs.fuse_per_hit * fetch, fetch))
        steps.append(self._step("page", 0.01, query.limit, offset=query.offset))
        return steps

    # -- strategies ------------------------------------------------------------------------

    def _finish(self, name: str, steps: list[Step], overfetch: int) -> Plan:
        return Plan(name, steps, sum(s.estimate_ms for s in steps), overfetch)  # type: ignore[arg-type]

    def _plan_single(self, name: str, query: Query, stats: TenantStats,
                     where: FilterNode | None) -> Plan:
        personalized = query.user is not None
        overfetch = self._overfetch(query, stats, where, personalized)
        fetch = (query.limit + query.offset) * overfetch
        steps = (self._semantic_steps(query, stats, where, fetch) if name == "vector-only"
                 else self._lexical_step(query, stats, where, fetch))
        return self._finish(name, steps + self._tail(query, fetch, personalized), overfetch)

    def _plan_graph_only(self, name: str, query: Query, stats: TenantStats,
                         where: FilterNode | None) -> Plan:
        personalized = query.user is not None
        fetch = (query.limit + query.offset) * (2 if personalized else 1)
        steps = self._graph_steps(query, stats)
        if query.graph is None:  # filter-only query: list the matching nodes
            size = self._filtered_size(query, stats, where)
            steps = [self._step("filter", self.costs.scan_per_node * stats.nodes, size)]
        return self._finish(name, steps + self._tail(query, fetch, personalized), 1)

    def _plan_parallel(self, name: str, query: Query, stats: TenantStats,
                       where: FilterNode | None) -> Plan:
        personalized = query.user is not None
        overfetch = self._overfetch(query, stats, where, personalized)
        fetch = (query.limit + query.offset) * overfetch
        steps = (self._graph_steps(query, stats)
                 + self._semantic_steps(query, stats, where, fetch)
                 + self._lexical_step(query, stats, where, fetch))
        return self._finish(name, steps + self._tail(query, fetch, personalized), overfetch)

    def _plan_sequential(self, name: str, query: Query, stats: TenantStats,
                         where: FilterNode | None) -> Plan:
        personalized = query.user is not None
        if query.graph is not None:
            size = int(self._reach(query, stats) * stats.selectivity(where, query.kind)) + 1
            steps = self._graph_steps(query, stats)
            steps.append(self._step("candidates", self.costs.fetch_per_node
                                    * self._reach(query, stats), size))
        else:
            size = self._filtered_size(query, stats, where)
            steps = [self._step("candidates", self.costs.scan_per_node * stats.nodes, size)]
        if query.semantic is not None and query.semantic.text is not None:
            steps.append(self._step("embed", self.costs.embed, 1))
        if query.semantic is not None:
            steps.append(self._step("dense", self.costs.exact_per_vector * size, size,
                                    mode="exact-candidates"))
        if query.lexical is not None:
            steps.append(self._step("lexical", self.costs.lexical_base
                                    + self.costs.lexical_per_candidate * size, size,
                                    mode="candidates"))
        fetch = max(size, query.limit + query.offset)
        return self._finish(name, steps + self._tail(query, fetch, personalized), 1)

    def _plan_cached(self) -> Plan:
        return Plan("cached-only", [Step("cache", {}, 0.05, 0)], 0.05, 1)

    def cached_plan(self) -> Plan:
        """The plan of a query answered from the result cache."""
        plan = self._plan_cached()
        plan.reason = "the result cache holds this query at the current seq"
        return plan

    @staticmethod
    def _reason(chosen: str, forced: str | None, query: Query, stats: TenantStats,
                where: FilterNode | None) -> str:
        if forced is not None:
            return "strategy forced by the query"
        if chosen == "cached-only":
            return "the result cache holds this query at the current seq"
        selectivity = stats.selectivity(where, query.kind)
        return (f"cheapest estimate; {stats.nodes:,} nodes in tenant, filter selectivity "
                f"~{selectivity:.3g}, retrievers {', '.join(query.retrievers) or 'none'}")
