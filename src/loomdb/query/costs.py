"""What a plan is estimated to cost: the cost model and the per-query estimator.

Costs are milliseconds from a small model of each step, fed by the statistics (nodes per kind,
filter selectivity from a sample, average degree per edge type, index sizes) and corrected by
the latencies the executor observes: each step keeps a moving average of actual/estimated,
which scales its future estimates.

``Estimator`` holds one query's inputs (the query, the tenant's statistics, the parsed filter)
and the estimates strategies share: sizes, reach, over-fetch, and the steps every strategy
builds from (graph, semantic, lexical, and the fuse/personalise/page tail).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from ..config import IndexSettings
from ..filters import FilterNode
from .plan import Query, Step
from .statistics import TenantStats

__all__ = ["EXPAND_LIMIT", "CostModel", "Estimator"]

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


@dataclass(frozen=True)
class Estimator:
    """One query's planning inputs, and the estimates the strategies build their plans from.

    ``cached`` says whether the result cache holds this query's answer at the current seq.
    """

    query: Query
    stats: TenantStats
    where: FilterNode | None  # the query's where= and kind=, parsed once by the engine
    costs: CostModel
    index: IndexSettings
    cached: bool = False

    @property
    def personalized(self) -> bool:
        return self.query.user is not None

    def filtered_size(self) -> int:
        """Nodes passing the query's filter."""
        return max(1, int(self.stats.nodes * self.stats.selectivity(self.where, self.query.kind)))

    def reach(self) -> int:
        """Nodes a graph part reaches: anchors times (1 + degree) per hop, bounded."""
        graph = self.query.graph
        if graph is None:
            return 0
        stats = self.stats
        anchors = len(graph.anchors) if graph.anchors else max(
            1, int(stats.nodes * stats.selectivity(None, None) * 0.001))
        degree = stats.degree(graph.types)
        if graph.direction != "both":
            degree /= 2
        return int(min(EXPAND_LIMIT, anchors * (1 + degree) ** graph.hops))

    def step(self, name: str, estimate: float, rows: int, **detail: object) -> Step:
        """A step named ``name`` whose raw ``estimate`` (ms) the cost model corrects."""
        return Step(name, dict(detail), self.costs.corrected(name, estimate), rows)

    def overfetch(self) -> int:
        """Candidates per result for what later steps throw away: a graph restriction applied
        after the index search keeps only the neighbourhood's share; exclusions drop some."""
        query = self.query
        factor = 2.0
        if query.graph is not None and query.graph.restrict:
            share = self.reach() / max(self.filtered_size(), 1)
            factor = max(factor, 1.0 / max(min(share, 1.0), 1.0 / MAX_OVERFETCH))
        if self.personalized:
            factor *= 1.5
        if query.multi_hop:
            factor *= 1.5
        return int(min(MAX_OVERFETCH, math.ceil(factor)))

    def semantic_steps(self, fetch: int) -> list[Step]:
        """Embed the text (if any), then one dense search: exact over a small filtered set,
        the ANN index otherwise."""
        semantic = self.query.semantic
        if semantic is None:
            return []
        steps = [self.step("embed", self.costs.embed, 1)] if semantic.text is not None else []
        size = self.filtered_size()
        filter_cost = 0.0 if self.where is None else self.costs.scan_per_node * self.stats.nodes
        if self.where is not None and size <= self.index.exact_threshold:
            cost = filter_cost + self.costs.exact_per_vector * size
            steps.append(self.step("dense", cost, min(fetch, size), mode="exact", k=fetch))
        else:
            cost = filter_cost + self.costs.ann_base + self.costs.ann_per_result * fetch
            steps.append(self.step("dense", cost, fetch, mode="ann", k=fetch))
        return steps

    def lexical_steps(self, fetch: int) -> list[Step]:
        """One BM25 search over the index (with the filter)."""
        if self.query.lexical is None:
            return []
        filter_cost = 0.0 if self.where is None \
            else self.costs.scan_per_node * self.stats.nodes * 0.1
        return [self.step("lexical", self.costs.lexical_base + filter_cost, fetch, k=fetch)]

    def graph_steps(self) -> list[Step]:
        """Find the anchors (for a ``matching`` graph part), then expand the neighbourhood."""
        graph = self.query.graph
        if graph is None:
            return []
        reach = self.reach()
        steps = []
        if graph.matching is not None:
            steps.append(self.step("anchors", self.costs.scan_per_node * self.stats.nodes, 100))
        edges = reach * max(self.stats.degree(graph.types), 1.0)
        steps.append(self.step("expand", self.costs.expand_per_edge * edges
                               + self.costs.fetch_per_node * reach, reach, hops=graph.hops))
        return steps

    def tail(self, fetch: int) -> list[Step]:
        """Fusion, then multi-hop and personalisation when asked for, then the page."""
        steps = [self.step("fuse", self.costs.fuse_per_hit * fetch * 3, fetch)]
        if self.query.multi_hop:
            steps.append(self.step("multi-hop", self.costs.activation_per_edge * fetch * 20,
                                   fetch))
        if self.personalized:
            steps.append(self.step("personalize", self.costs.fuse_per_hit * fetch, fetch))
        steps.append(self.step("page", 0.01, self.query.limit, offset=self.query.offset))
        return steps
