"""The cost-based planner: which strategy answers a query fastest, with how much over-fetch.

It asks every registered strategy (``strategies.STRATEGIES``) whether it applies to the query,
has each that does build its plan with estimated costs (``costs.Estimator``), and keeps the
cheapest, with the others' estimates as the alternatives ``explain()`` shows. A strategy the
query forces is planned whether or not it applies.
"""

from __future__ import annotations

from ..config import IndexSettings
from ..errors import InvalidInput
from ..filters import FilterNode
from .costs import CostModel, Estimator
from .plan import Plan, Query
from .statistics import TenantStats
from .strategies import STRATEGIES, CachedOnly, strategy_named, strategy_names

__all__ = ["Planner"]


class Planner:
    """Builds the cheapest plan for a query from a tenant's statistics."""

    def __init__(self, index: IndexSettings, costs: CostModel | None = None) -> None:
        self.index = index
        self.costs = costs or CostModel()

    def plan(self, query: Query, stats: TenantStats, where: FilterNode | None,
             cached: bool) -> Plan:
        """The chosen plan; ``alternatives`` holds every weighed strategy's estimate.
        ``cached`` says whether the result cache holds the query's answer."""
        forced = None if query.strategy is None else strategy_named(query.strategy)
        if forced is not None and not forced.forcible:  # cached-only: the cache decides
            raise InvalidInput(f"strategy {forced.name!r} is the planner's to choose; force "
                               f"one of {', '.join(strategy_names(forcible=True))}")
        estimator = Estimator(query, stats, where, self.costs, self.index, cached)
        candidates = {name: strategy.plan(estimator) for name, strategy in STRATEGIES.items()
                      if strategy.applies(estimator)}
        if forced is not None and forced.name not in candidates:
            candidates[forced.name] = forced.plan(estimator)
        chosen = forced.name if forced is not None else min(
            candidates, key=lambda name: candidates[name].estimate_ms)
        plan = candidates[chosen]
        plan.alternatives = {name: p.estimate_ms for name, p in candidates.items()}
        plan.reason = "strategy forced by the query" if forced is not None \
            else STRATEGIES[chosen].reason(estimator)
        return plan

    @staticmethod
    def cached_plan() -> Plan:
        """The plan of a query answered from the result cache."""
        return CachedOnly().cache_plan()
