"""Evaluating retrieval on a golden set: every query through every strategy, scored and timed.

``evaluate`` asks each golden query once per strategy with the result cache off (so every
query does its full work), after one untimed warm-up query per strategy (model loading and
cold caches would otherwise land in the first sample). Per strategy it reports recall@k, MRR,
nDCG@10, citation accuracy and latency percentiles, plus which plans the planner chose.

Citation accuracy is the share of queries whose top hit cites a gold source: the ``gold``
documents (and pages) of the query, or, for ``gold_ids``, the documents and pages the gold
nodes themselves cite. Queries with no known gold source are left out of it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..model import Hit, citation_of
from ..query.engine import QueryResult
from ..query.plan import Query
from ..store import Store
from ..validation import check_limit
from .golden import ANY_KIND, GoldDocument, GoldenQuery
from .metrics import Gains, gains_of_ids, mean, ndcg_at_k, recall_at_k, reciprocal_rank
from .strategies import DEFAULT_STRATEGIES, EvalStrategy, resolve_strategy

__all__ = ["EvalReport", "ProgressCallback", "QueryOutcome", "StrategyReport", "evaluate"]

ProgressCallback = Callable[[str, int, int], None]  # (strategy, queries done, queries in all)
Ask = Callable[[Query], QueryResult]
NDCG_CUTOFF = 10
ID_BATCH = 1_000


@dataclass(frozen=True)
class QueryOutcome:
    """One golden query under one strategy: the ranked ids, its scores and its latency.
    ``cited`` is ``None`` when the query has no known gold source."""

    line: int
    id: str | None
    ranked: tuple[str, ...]
    recall: float
    reciprocal_rank: float
    ndcg: float
    cited: bool | None
    ms: float
    plan: str


@dataclass(frozen=True)
class StrategyReport:
    """Every query's outcome under one strategy, and their aggregates."""

    strategy: str
    k: int
    outcomes: tuple[QueryOutcome, ...]

    @property
    def metrics(self) -> dict[str, float | None]:
        """recall@k, mrr, ndcg@10 and citation_accuracy, averaged over the queries."""
        cited = [float(o.cited) for o in self.outcomes if o.cited is not None]
        return {f"recall@{self.k}": mean(o.recall for o in self.outcomes),
                "mrr": mean(o.reciprocal_rank for o in self.outcomes),
                f"ndcg@{NDCG_CUTOFF}": mean(o.ndcg for o in self.outcomes),
                "citation_accuracy": mean(cited)}

    @property
    def latency_ms(self) -> dict[str, float]:
        """p50, p95 and p99 of the query latencies, in milliseconds."""
        samples = np.fromiter((o.ms for o in self.outcomes), dtype=np.float64)
        if not samples.size:
            return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
        p50, p95, p99 = np.percentile(samples, [50, 95, 99])
        return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}

    @property
    def plans(self) -> dict[str, int]:
        """How often each plan strategy answered (the planner's choices)."""
        return dict(Counter(o.plan for o in self.outcomes))

    def to_dict(self) -> dict[str, object]:  # JSON-ready
        return {"strategy": self.strategy, "queries": len(self.outcomes), **self.metrics,
                "latency_ms": self.latency_ms, "plans": self.plans}


@dataclass(frozen=True)
class EvalReport:
    """The result of ``evaluate``: one report per strategy, in the order asked.
    ``missing_gold`` lists gold ids that are not in the store (a golden set made for another
    store scores zero without this warning)."""

    k: int
    queries: int
    strategies: tuple[StrategyReport, ...]
    missing_gold: tuple[str, ...] = ()
    ndcg_cutoff: int = NDCG_CUTOFF

    def __getitem__(self, name: str) -> StrategyReport:
        for report in self.strategies:
            if report.strategy == name:
                return report
        raise KeyError(name)

    def to_dict(self) -> dict[str, object]:  # JSON-ready
        return {"k": self.k, "queries": self.queries, "missing_gold": list(self.missing_gold),
                "strategies": [report.to_dict() for report in self.strategies]}


@dataclass
class _Scoring:
    """What scoring needs besides the hits: the gold sources of id-judged queries."""

    k: int
    kind: str | None
    sources: dict[int, tuple[GoldDocument, ...]] = field(default_factory=dict)


def evaluate(
    ask: Ask, store: Store, golden: Sequence[GoldenQuery],
    strategies: Sequence[str | EvalStrategy] = DEFAULT_STRATEGIES, *, k: int = 10,
    kind: str | None = "chunk", progress: ProgressCallback | None = None,
) -> EvalReport:
    """Run every golden query through every strategy and score it (``Database.evaluate``).

    Args:
        ask: answers a query with the plan that produced it, the result cache off.
        store: the tenant's records, for the gold nodes' citations.
        golden: the queries (``read_golden``).
        strategies: names from ``loomdb.eval.strategies.STRATEGIES`` or custom ones.
        k: hits asked per query; recall is recall@k, MRR is over these k.
        kind: the node kind searched unless a golden query names one (``None`` or ``"*"``:
            any kind).
        progress: called after each query with (strategy, done, total).
    """
    check_limit(k, "k", 10_000)
    resolved = [resolve_strategy(s) for s in strategies]
    sources, missing = _gold_sources(store, golden)
    context = _Scoring(k, None if kind == ANY_KIND else kind, sources)
    reports = tuple(_run_strategy(ask, golden, strategy, context, progress)
                    for strategy in resolved)
    return EvalReport(k, len(golden), reports, tuple(missing))


def _run_strategy(ask: Ask, golden: Sequence[GoldenQuery], strategy: EvalStrategy,
                  context: _Scoring, progress: ProgressCallback | None) -> StrategyReport:
    if golden:  # warm-up, untimed: loads the model and warms the caches
        ask(_query(strategy, golden[0], context))
    outcomes = []
    for done, item in enumerate(golden, start=1):
        query = _query(strategy, item, context)
        started = time.perf_counter()
        result = ask(query)
        ms = (time.perf_counter() - started) * 1000
        outcomes.append(_outcome(item, result.hits, ms, result.plan.strategy, context))
        if progress is not None:
            progress(strategy.name, done, len(golden))
    return StrategyReport(strategy.name, context.k, tuple(outcomes))


def _query(strategy: EvalStrategy, item: GoldenQuery, context: _Scoring) -> Query:
    kind = context.kind if item.kind is None else (None if item.kind == ANY_KIND else item.kind)
    return strategy.query(item.query, k=context.k, where=item.where, kind=kind)


def _outcome(item: GoldenQuery, hits: list[Hit], ms: float, plan: str,
             context: _Scoring) -> QueryOutcome:
    gains = (gains_of_ids([h.id for h in hits], item.gold_ids) if item.gold_ids
             else _document_gains(hits, item.gold_documents))
    sources = item.gold_documents or context.sources.get(item.line, ())
    cited = None if not sources else bool(hits) and any(
        gold.grade > 0 and gold.cited_by(hits[0].citation) for gold in sources)
    return QueryOutcome(item.line, item.id, tuple(h.id for h in hits),
                        recall_at_k(gains, item.relevant, context.k), reciprocal_rank(gains),
                        ndcg_at_k(gains, item.grades, NDCG_CUTOFF), cited, ms, plan)


def _document_gains(hits: Sequence[Hit], gold: Sequence[GoldDocument]) -> Gains:
    """Gains when relevance is by citation: each hit takes the best gold source it cites
    that no earlier hit took, so a source counts once however many of its chunks appear."""
    gains = np.zeros(len(hits), dtype=np.float64)
    unused = sorted(range(len(gold)), key=lambda i: -gold[i].grade)
    for position, hit in enumerate(hits):
        taken = next((i for i in unused if gold[i].cited_by(hit.citation)), None)
        if taken is not None:
            gains[position] = gold[taken].grade
            unused.remove(taken)
    return gains


def _gold_sources(store: Store, golden: Sequence[GoldenQuery]
                  ) -> tuple[dict[int, tuple[GoldDocument, ...]], list[str]]:
    """For id-judged queries, the sources their relevant gold nodes cite (by golden line),
    and the gold ids the store does not have."""
    wanted = sorted({i for q in golden for i, grade in q.gold_ids.items() if grade > 0})
    nodes = {}
    for start in range(0, len(wanted), ID_BATCH):
        nodes.update(store.get_nodes(wanted[start:start + ID_BATCH]))
    sources: dict[int, tuple[GoldDocument, ...]] = {}
    for item in golden:
        cites = [citation_of(nodes[i]) for i, grade in item.gold_ids.items()
                 if grade > 0 and i in nodes]
        found = {GoldDocument(c.document, c.page) for c in cites if c is not None}
        if found:
            sources[item.line] = tuple(sorted(found, key=lambda g: (g.document, g.page or 0)))
    return sources, [i for i in wanted if i not in nodes]
