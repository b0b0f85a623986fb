"""The executor: runs a plan's steps in order, timing each, and returns the hits they fused.

Each step is run by the chosen strategy's own runner for it, else by the shared one in
``steps.STEPS``. Every step records its actual time and output size on the plan, and the cost
model learns from them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..filters import FilterNode
from ..ml.bridge import Matrix
from ..model import Hit
from ..store import Store
from .costs import CostModel
from .plan import Plan, Query
from .steps import STEPS, RunState, StepRunner
from .strategies import Strategy, strategy_named

__all__ = ["execute"]


def execute(store: Store, query: Query, plan: Plan, where: FilterNode | None,
            embed: Callable[[str], Matrix], costs: CostModel) -> list[Hit]:
    """Run ``plan`` for ``query`` in ``store``'s tenant; returns the page of hits and fills in
    the plan's actuals."""
    strategy = strategy_named(plan.strategy)
    state = RunState(store, query, where, embed,
                     fetch=(query.limit + query.offset) * plan.overfetch)
    started = time.perf_counter()
    for step in plan.steps:
        run = _runner(strategy, step.name)
        begun = time.perf_counter()
        step.actual_rows = run(state, step)
        step.actual_ms = (time.perf_counter() - begun) * 1000
        costs.observe(step)
    plan.actual_ms = (time.perf_counter() - started) * 1000
    return state.hits


def _runner(strategy: Strategy, name: str) -> StepRunner:
    run = strategy.runners.get(name) or STEPS.get(name)
    if run is None:
        raise LookupError(f"strategy {strategy.name!r} plans a step {name!r} that nothing runs")
    return run
