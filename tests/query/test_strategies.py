"""The strategy registry: every strategy is one registered object the planner costs and the
executor runs, and a strategy registered from outside joins them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest

import loomdb
from loomdb.errors import InvalidInput
from loomdb.query.costs import Estimator
from loomdb.query.plan import Plan, Query, SemanticPart, Step
from loomdb.query.steps import RunState
from loomdb.query.strategies import (
    STRATEGIES,
    Strategy,
    register,
    strategy_named,
    strategy_names,
)
from tests.conftest import unit_vectors

DIM = 8
BUILT_IN = ("vector-only", "lexical-only", "graph-only", "hybrid-parallel",
            "hybrid-sequential", "cached-only")


@pytest.fixture
def small(tmp_path: Path) -> Iterator[loomdb.Database]:
    """One hub and 40 passages around it, with vectors and words."""
    db = loomdb.open(tmp_path / "small", ml=None, weaver=False)
    db.create_space("text", DIM, model="test-model")
    db.add_node("hub", kind="entity", text="hub")
    db.add_nodes([{"id": f"p{i}", "kind": "chunk", "text": f"passage {i} about rivers"}
                  for i in range(40)], vectors=unit_vectors(40, DIM, seed=1))
    db.add_edges([{"src": f"p{i}", "dst": "hub", "type": "mentions"} for i in range(40)])
    yield db
    db.close()


def _reverse(state: RunState, step: Step) -> int:
    state.rankings["dense"].reverse()
    return len(state.rankings["dense"])


class ReversedDense(Strategy):
    """A toy: the dense ranking upside down, with a step of its own, claiming to be cheap."""

    name = "toy-reversed-dense"
    runners = MappingProxyType({"reverse": _reverse})

    def applies(self, estimator: Estimator) -> bool:
        return estimator.query.retrievers == ("dense",)

    def plan(self, estimator: Estimator) -> Plan:
        fetch = (estimator.query.limit + estimator.query.offset) * 2
        steps = [*estimator.semantic_steps(fetch), Step("reverse", {}, 0.0, fetch),
                 *estimator.tail(fetch)]
        for step in steps:
            step.estimate_ms = 1e-6
        return self.finish(steps, 2)


@pytest.fixture
def toy() -> Iterator[Strategy]:
    register(ReversedDense)
    try:
        yield STRATEGIES[ReversedDense.name]
    finally:
        del STRATEGIES[ReversedDense.name]


def test_the_built_in_strategies_are_registered_once() -> None:
    assert strategy_names() == BUILT_IN
    assert strategy_names(forcible=True) == BUILT_IN[:-1]
    assert all(strategy_named(name).name == name for name in BUILT_IN)


def test_a_strategy_registered_from_outside_is_planned_and_executed(
        small: loomdb.Database, toy: Strategy) -> None:
    vector = unit_vectors(1, DIM, seed=5)[0]
    plan = small.explain(vector=vector, k=5, cache=False)
    assert plan.strategy == toy.name  # the cheapest estimate wins
    assert set(plan.alternatives) == {"vector-only", toy.name}
    assert [s.name for s in plan.steps] == ["dense", "reverse", "fuse", "page"]
    assert all(s.actual_ms is not None for s in plan.steps) and plan.steps[1].actual_rows == 10
    hits = small.query(vector=vector, k=5, cache=False)
    expected = small.vector_search(vector, k=10)[::-1][:5]
    assert [h.id for h in hits] == [h.id for h in expected]
    forced = small.query(vector=vector, lexical="rivers", k=5, strategy=toy.name, cache=False)
    assert [h.id for h in forced] == [h.id for h in expected]


@pytest.mark.parametrize("name", [n for n in BUILT_IN if n != "cached-only"])
def test_every_registered_strategy_has_a_cost_and_runs(small: loomdb.Database,
                                                       name: str) -> None:
    vector = unit_vectors(1, DIM, seed=2)[0]
    plan = small.explain(vector=vector, lexical="rivers", near="hub", kind="chunk", k=5,
                         strategy=name)
    assert plan.strategy == name and plan.estimate_ms > 0
    assert plan.estimate_ms == pytest.approx(sum(s.estimate_ms for s in plan.steps))
    assert plan.actual_ms is not None
    assert all(s.actual_ms is not None and s.actual_rows is not None for s in plan.steps)
    hits = small.query(vector=vector, lexical="rivers", near="hub", kind="chunk", k=5,
                       strategy=name, cache=False)
    assert all(h.node.kind == "chunk" for h in hits)


def test_the_cache_answers_cached_only_and_no_query_can_force_it(
        small: loomdb.Database) -> None:
    vector = unit_vectors(1, DIM, seed=2)[0]
    first = small.query(vector=vector, k=5)
    plan = small.engine.run(small.context, small.find().similar_to(vector).limit(5).build()).plan
    assert plan.strategy == "cached-only" and plan.actual_ms is not None
    assert [h.id for h in small.query(vector=vector, k=5)] == [h.id for h in first]
    assert "cached-only" not in loomdb.query_strategies(forcible=True)
    with pytest.raises(loomdb.InvalidInput, match="planner's to choose"):
        small.query(vector=vector, k=5, strategy="cached-only")


def test_each_query_shape_is_weighed_by_the_strategies_that_apply(
        small: loomdb.Database) -> None:
    vector = unit_vectors(1, DIM, seed=3)[0]
    shapes: list[tuple[dict[str, object], tuple[str, ...]]] = [
        ({"vector": vector}, ("vector-only",)),
        ({"lexical": "rivers", "semantic": False}, ("lexical-only",)),
        ({"near": "hub"}, ("graph-only",)),
        ({"kind": "chunk"}, ("graph-only",)),
        ({"vector": vector, "lexical": "rivers"}, ("hybrid-parallel", "hybrid-sequential")),
        ({"vector": vector, "near": "hub"}, ("hybrid-parallel", "hybrid-sequential")),
    ]
    for arguments, names in shapes:
        assert tuple(small.explain(**arguments, execute=False).alternatives) == names


def test_unknown_and_badly_made_strategies_are_refused(small: loomdb.Database) -> None:
    with pytest.raises(InvalidInput, match="registered: vector-only, lexical-only"):
        small.query(vector=np.ones(DIM), strategy="telepathy")
    with pytest.raises(InvalidInput, match="registered strategy"):
        Query(semantic=SemanticPart(vector=(1.0,) * DIM), strategy="")
    with pytest.raises(InvalidInput, match="already registered"):
        register(type(STRATEGIES["vector-only"]))

    class Nameless(ReversedDense):
        name = ""

    with pytest.raises(InvalidInput, match="needs a name"):
        register(Nameless)
    assert strategy_names() == BUILT_IN
