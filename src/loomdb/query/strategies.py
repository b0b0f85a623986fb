"""The strategies the planner weighs, each one object, and the registry that holds them.

A strategy has a ``name``, says whether it ``applies`` to a query, and builds its ``plan``: the
steps it runs (by name, see ``steps.STEPS``), each with its estimated cost from the statistics.
``runners`` adds steps of its own. The planner costs every strategy that applies and keeps the
cheapest; the executor runs the chosen plan's steps. Adding a strategy means writing one class
and ``register``-ing it.

- ``vector-only``, ``lexical-only``, ``graph-only``: one retriever (``graph-only`` also answers
  filter-only queries).
- ``hybrid-parallel``: every retriever runs on its own (each with the filter), then fusion;
  a graph part restricts or ranks afterwards. Good when the filter and the neighbourhood are
  broad: the indexes do the narrowing.
- ``hybrid-sequential``: filter -> graph neighbourhood -> exact dense and lexical scoring of
  just those candidates -> fusion. Good when the neighbourhood (times the filter's
  selectivity) is small: scoring a few hundred candidates exactly beats two index searches
  that must over-fetch past everything the neighbourhood will throw away.
- ``cached-only``: the result cache has the answer for this exact query at this ``seq``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar, TypeVar

from ..errors import InvalidInput
from .costs import Estimator
from .plan import Plan, Step
from .steps import RunState, StepRunner

__all__ = ["STRATEGIES", "Strategy", "register", "strategy_named", "strategy_names"]

CACHED_REASON = "the result cache holds this query at the current seq"


class Strategy(ABC):
    """One way of answering a query. Subclasses set ``name`` and implement ``applies`` and
    ``plan``; ``forcible`` says whether users are offered it (the CLI's ``--strategy``)."""

    name: ClassVar[str]
    forcible: ClassVar[bool] = True
    runners: ClassVar[Mapping[str, StepRunner]] = MappingProxyType({})
    """Runners for steps of this strategy's own, by step name (they win over ``STEPS``)."""

    @abstractmethod
    def applies(self, estimator: Estimator) -> bool:
        """Whether the planner weighs this strategy for ``estimator.query`` (a strategy the
        query forces is planned even when it does not apply)."""

    @abstractmethod
    def plan(self, estimator: Estimator) -> Plan:
        """The steps this strategy runs for the query, each with its estimated cost."""

    def reason(self, estimator: Estimator) -> str:
        """Why the planner chose this strategy, for ``explain()``."""
        query, stats = estimator.query, estimator.stats
        selectivity = stats.selectivity(estimator.where, query.kind)
        return (f"cheapest estimate; {stats.nodes:,} nodes in tenant, filter selectivity "
                f"~{selectivity:.3g}, retrievers {', '.join(query.retrievers) or 'none'}")

    def finish(self, steps: list[Step], overfetch: int) -> Plan:
        """This strategy's plan of ``steps``: its cost is theirs summed."""
        return Plan(self.name, steps, sum(s.estimate_ms for s in steps), overfetch)


STRATEGIES: dict[str, Strategy] = {}
"""The registry: every strategy by name, in registration order (which breaks cost ties)."""

S = TypeVar("S", bound=type[Strategy])


def register(cls: S) -> S:
    """Register (an instance of) the strategy class ``cls``; usable as a class decorator."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"strategy {cls.__name__} needs a name")
    if name in STRATEGIES:
        raise InvalidInput(f"a strategy named {name!r} is already registered")
    STRATEGIES[name] = cls()
    return cls


def strategy_named(name: str) -> Strategy:
    """The registered strategy called ``name``."""
    found = STRATEGIES.get(name) if isinstance(name, str) else None
    if found is None:
        raise InvalidInput(f"unknown strategy {name!r:.60}; registered: "
                           f"{', '.join(STRATEGIES)}")
    return found


def strategy_names(*, forcible: bool = False) -> tuple[str, ...]:
    """The registered strategies' names (only those offered to users, with ``forcible``)."""
    return tuple(name for name, s in STRATEGIES.items() if s.forcible or not forcible)


# -- the built-in strategies ---------------------------------------------------------------

@register
class VectorOnly(Strategy):
    """Dense similarity alone: embed, one (exact or ANN) search, fusion of one ranking."""

    name = "vector-only"

    def applies(self, estimator: Estimator) -> bool:
        return estimator.query.retrievers == ("dense",)

    def plan(self, estimator: Estimator) -> Plan:
        overfetch = estimator.overfetch()
        fetch = (estimator.query.limit + estimator.query.offset) * overfetch
        return self.finish(estimator.semantic_steps(fetch) + estimator.tail(fetch), overfetch)


@register
class LexicalOnly(Strategy):
    """BM25 alone."""

    name = "lexical-only"

    def applies(self, estimator: Estimator) -> bool:
        return estimator.query.retrievers == ("lexical",)

    def plan(self, estimator: Estimator) -> Plan:
        overfetch = estimator.overfetch()
        fetch = (estimator.query.limit + estimator.query.offset) * overfetch
        return self.finish(estimator.lexical_steps(fetch) + estimator.tail(fetch), overfetch)


@register
class GraphOnly(Strategy):
    """The graph neighbourhood ranked by nearness; with no graph part, the nodes matching the
    filter."""

    name = "graph-only"

    def applies(self, estimator: Estimator) -> bool:
        return estimator.query.retrievers in (("graph",), ())

    def plan(self, estimator: Estimator) -> Plan:
        query = estimator.query
        fetch = (query.limit + query.offset) * (2 if estimator.personalized else 1)
        steps = estimator.graph_steps()
        if query.graph is None:  # filter-only query: list the matching nodes
            nodes = estimator.stats.nodes
            steps = [estimator.step("filter", estimator.costs.scan_per_node * nodes,
                                    estimator.filtered_size())]
        return self.finish(steps + estimator.tail(fetch), 1)


@register
class HybridParallel(Strategy):
    """Every retriever on its own (each with the filter), then fusion."""

    name = "hybrid-parallel"

    def applies(self, estimator: Estimator) -> bool:
        return len(estimator.query.retrievers) > 1

    def plan(self, estimator: Estimator) -> Plan:
        overfetch = estimator.overfetch()
        fetch = (estimator.query.limit + estimator.query.offset) * overfetch
        steps = (estimator.graph_steps() + estimator.semantic_steps(fetch)
                 + estimator.lexical_steps(fetch))
        return self.finish(steps + estimator.tail(fetch), overfetch)


@register
class HybridSequential(Strategy):
    """Filter -> graph neighbourhood -> exact scoring of just those candidates -> fusion;
    weighed when there is a neighbourhood or the filter leaves few enough nodes."""

    name = "hybrid-sequential"

    def applies(self, estimator: Estimator) -> bool:
        query = estimator.query
        return len(query.retrievers) > 1 and (
            query.graph is not None
            or estimator.filtered_size() <= estimator.index.exact_threshold)

    def plan(self, estimator: Estimator) -> Plan:
        query, costs = estimator.query, estimator.costs
        steps, size = self._candidate_steps(estimator)
        if query.semantic is not None and query.semantic.text is not None:
            steps.append(estimator.step("embed", costs.embed, 1))
        if query.semantic is not None:
            steps.append(estimator.step("dense", costs.exact_per_vector * size, size,
                                        mode="exact-candidates"))
        if query.lexical is not None:
            steps.append(estimator.step("lexical", costs.lexical_base
                                        + costs.lexical_per_candidate * size, size,
                                        mode="candidates"))
        fetch = max(size, query.limit + query.offset)
        return self.finish(steps + estimator.tail(fetch), 1)

    @staticmethod
    def _candidate_steps(estimator: Estimator) -> tuple[list[Step], int]:
        """The steps that gather the candidates, and how many there will be."""
        query, stats, costs = estimator.query, estimator.stats, estimator.costs
        if query.graph is None:
            size = estimator.filtered_size()
            return [estimator.step("candidates", costs.scan_per_node * stats.nodes, size)], size
        reach = estimator.reach()
        size = int(reach * stats.selectivity(estimator.where, query.kind)) + 1
        steps = estimator.graph_steps()
        steps.append(estimator.step("candidates", costs.fetch_per_node * reach, size))
        return steps, size


def _answered_by_engine(state: RunState, step: Step) -> int:
    """The engine answers a cache hit before execution; there is nothing left to run."""
    return len(state.hits)


@register
class CachedOnly(Strategy):
    """The result cache holds the answer. Not forcible: the engine takes it when the cache
    has the query; forced, it answers nothing."""

    name = "cached-only"
    forcible = False
    runners = MappingProxyType({"cache": _answered_by_engine})

    def applies(self, estimator: Estimator) -> bool:
        return estimator.cached and estimator.query.use_cache

    def plan(self, estimator: Estimator) -> Plan:
        return self.cache_plan()

    def reason(self, estimator: Estimator) -> str:
        return CACHED_REASON

    def cache_plan(self) -> Plan:
        """The plan of a query the cache answers (it needs no statistics)."""
        return Plan(self.name, [Step("cache", {}, 0.05, 0)], 0.05, 1, reason=CACHED_REASON)
