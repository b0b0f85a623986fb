"""The query engine of one store: statistics, planner, executor and result cache together.

Shared by every tenant handle of a store. ``run`` looks the query up in the cache (keyed by
tenant, user, the normalised query and the store's ``seq``, so any write makes older entries
unreachable), plans it, executes it, and caches the result: 5 minutes when personalised,
1 hour otherwise.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

import numpy as np

from ..cache import CacheKey, CacheStats
from ..config import IndexSettings
from ..context import Context
from ..filters import parse_where
from ..model import Hit
from ..similarity import Matrix
from .executor import execute
from .plan import Plan, Query
from .planner import Planner
from .statistics import Statistics

if TYPE_CHECKING:
    from ..cache import ResultCache
    from ..storage.base import Backend

__all__ = ["QueryEngine", "QueryResult", "QueryStats"]

LATENCY_WINDOW = 2000


class QueryStats(TypedDict):
    """``db.query_stats()``: per strategy ``{"count", "p50_ms", "p95_ms"}``, the cache's
    statistics (``None`` without a cache), and the planner's learned cost corrections."""

    queries: dict[str, dict[str, float]]
    cache: CacheStats | None
    cost_corrections: dict[str, float]


@dataclass(frozen=True)
class QueryResult:
    """Hits with the plan that produced them (its steps' actual times filled in)."""

    hits: list[Hit]
    plan: Plan
    cached: bool


class QueryEngine:
    """Plans and runs converged queries for one store."""

    def __init__(self, backend: Backend, index: IndexSettings,
                 cache: ResultCache | None = None, namespace: str = "") -> None:
        self.statistics = Statistics(backend)
        self.planner = Planner(index)
        self.cache = cache
        self.namespace = namespace
        self._latency: deque[tuple[str, str, float]] = deque(maxlen=LATENCY_WINDOW)
        self._lock = threading.Lock()

    def run(self, ctx: Context, query: Query, execute_plan: bool = True) -> QueryResult:
        """Answer ``query`` in ``ctx``'s tenant (or only plan it, with
        ``execute_plan=False``)."""
        started = time.perf_counter()
        where = parse_where(query.where, query.kind)  # refused here, before it is hashed
        if query.graph is not None:
            parse_where(query.graph.matching)
        key = self._key(ctx, query) if query.strategy is None else None
        cached = self.cache.get(key) if key is not None and self.cache is not None else None
        if cached is not None and execute_plan:  # a hit needs no statistics and no plan
            plan = self.planner.cached_plan()
            plan.steps[0].actual_ms = plan.actual_ms = (time.perf_counter() - started) * 1000
            plan.steps[0].actual_rows = len(cached)
            self._record(ctx.tenant, plan)
            return QueryResult(list(cached), plan, True)
        plan = self.planner.plan(query, self.statistics.of(ctx.tenant), where,
                                 cached is not None)
        if not execute_plan:
            return QueryResult([], plan, False)
        hits = execute(ctx.store, query, plan, where, self._embedder(ctx), self.planner.costs)
        if key is not None and self.cache is not None:
            self.cache.put(key, hits, personalized=query.user is not None)
        self._record(ctx.tenant, plan)
        return QueryResult(hits, plan, False)

    def _key(self, ctx: Context, query: Query) -> CacheKey | None:
        if self.cache is None or not query.use_cache:
            return None
        return CacheKey(self.namespace, ctx.tenant, query.user, query.fingerprint(),
                        ctx.backend.seq())

    @staticmethod
    def _embedder(ctx: Context) -> Callable[[str], Matrix]:
        def embed(text: str) -> Matrix:
            vector: Matrix = ctx.provider.embed([text])[0]
            return np.asarray(vector, dtype=np.float32)
        return embed

    def _record(self, tenant: str, plan: Plan) -> None:
        with self._lock:
            self._latency.append((tenant, plan.strategy, plan.actual_ms or 0.0))

    def stats(self, tenant: str | None = None) -> QueryStats:
        """Queries per strategy with p50/p95 latency (ms) over the recent window (of every
        tenant, or of ``tenant``), the cache's own statistics, and the planner's learned cost
        corrections (both the store's: one cache and one cost model serve every tenant)."""
        with self._lock:
            samples = list(self._latency)
        by_strategy: dict[str, list[float]] = {}
        for owner, strategy, ms in samples:
            if tenant is None or owner == tenant:
                by_strategy.setdefault(strategy, []).append(ms)
        latency = {s: {"count": len(v), "p50_ms": float(np.percentile(v, 50)),
                       "p95_ms": float(np.percentile(v, 95))} for s, v in by_strategy.items()}
        cache = None if self.cache is None else self.cache.stats()
        return QueryStats(queries=latency, cache=cache,
                          cost_corrections=self.planner.costs.corrections())
