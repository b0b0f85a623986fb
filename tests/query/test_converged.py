"""Converged queries: planner, executor, fusion, cache, personalisation, multi-hop, reasoning.

Real stores; vectors are random unit vectors in a 16-d space so that the expected answers can
be computed by brute force here. The tests that embed text use the real local model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import loomdb
from loomdb.errors import InvalidInput, NotFound
from loomdb.query.fusion import reciprocal_rank_fusion
from loomdb.query.plan import GraphPart, Query, SemanticPart
from tests.conftest import unit_vectors

DIM = 16
TOPICS = ["rivers", "mountains", "deserts", "forests"]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[loomdb.Database]:
    """4 entities; 200 chunks, each mentioning one or two entities; entity co-occurrence."""
    db = loomdb.open(tmp_path / "world", ml=None, weaver=False)
    db.create_space("text", DIM, model="test-model")
    rng = np.random.default_rng(7)
    vectors = unit_vectors(200, DIM, seed=3)
    entities = [f"entity:{t}" for t in TOPICS]
    db.add_nodes([{"id": e, "kind": "entity", "text": e.split(":")[1]} for e in entities])
    chunks, edges = [], []
    for i in range(200):
        topic = i % 4
        words = f"a passage about {TOPICS[topic]} number {i}"
        chunks.append({"id": f"c{i}", "kind": "chunk", "text": words,
                       "props": {"document": f"d{i % 10}", "page": i % 3 + 1, "start": 0,
                                 "end": len(words), "n": i},
                       "category": "even" if i % 2 == 0 else "odd", "source": f"s{i % 5}"})
        edges.append({"src": f"c{i}", "dst": entities[topic], "type": "mentions"})
        if rng.random() < 0.3:
            other = (topic + 1) % 4
            edges.append({"src": f"c{i}", "dst": entities[other], "type": "mentions"})
    db.add_nodes(chunks, vectors=vectors)
    db.add_edges(edges)
    db.add_edges([{"src": entities[0], "dst": entities[1], "type": "co_occurs", "weight": 5.0},
                  {"src": entities[1], "dst": entities[2], "type": "co_occurs", "weight": 1.0}])
    yield db
    db.close()


def query_vector(seed: int = 11) -> np.ndarray:
    return unit_vectors(1, DIM, seed=seed)[0]


def brute_force(db: loomdb.Database, vector: np.ndarray, ids: list[str], k: int) -> list[str]:
    stored = db.get_vectors(ids)
    scored = sorted(stored, key=lambda i: -float(np.dot(stored[i], vector)))
    return scored[:k]


# -- fusion ----------------------------------------------------------------------------------

def test_rrf_rewards_agreement_and_respects_weights() -> None:
    fused = reciprocal_rank_fusion({"dense": [("a", 0.9), ("b", 0.8)],
                                    "lexical": [("b", 7.0), ("c", 5.0)]})
    assert [f.id for f in fused] == ["b", "a", "c"]
    assert fused[0].agreement == 2 and fused[0].ranks == {"dense": 2, "lexical": 1}
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)
    tilted = reciprocal_rank_fusion({"dense": [("a", 0.9), ("b", 0.8)],
                                     "lexical": [("b", 7.0), ("c", 5.0)]},
                                    weights={"lexical": 0.0})
    assert tilted[0].id == "a"
    with pytest.raises(InvalidInput):
        reciprocal_rank_fusion({"dense": []}, weights={"telepathy": 1.0})


# -- results ---------------------------------------------------------------------------------

@pytest.mark.parametrize("strategy", ["hybrid-parallel", "hybrid-sequential"])
def test_converged_query_stays_in_the_neighbourhood_and_fills_the_page(
        world: loomdb.Database, strategy: str) -> None:
    vector = query_vector()
    hits = world.query(vector=vector, lexical="rivers passage", kind="chunk",
                       where={"category": "even"}, near="entity:rivers", hops=1, k=15,
                       strategy=strategy)
    eligible = {e.src for e in world.get_edges(dst="entity:rivers", types=["mentions"])}
    eligible = {i for i in eligible if int(i[1:]) % 2 == 0}
    assert len(hits) == min(15, len(eligible))
    assert {h.id for h in hits} <= eligible
    for hit in hits:
        assert set(hit.scores) >= {"dense", "rrf", "agreement"}
        assert hit.citation is not None and hit.citation.document.startswith("d")


def test_both_hybrid_strategies_agree_on_the_dense_order(world: loomdb.Database) -> None:
    vector = query_vector(5)
    common = dict(vector=vector, kind="chunk", near="entity:deserts", k=8, cache=False)
    parallel = world.query(**common, strategy="hybrid-parallel")
    sequential = world.query(**common, strategy="hybrid-sequential")
    neighbourhood = [e.src for e in world.get_edges(dst="entity:deserts", types=["mentions"])]
    expected = brute_force(world, vector, neighbourhood, 8)
    dense_order = lambda hits: sorted(hits, key=lambda h: -h.scores["dense"])  # noqa: E731
    assert [h.id for h in dense_order(sequential)] == expected
    assert [h.id for h in dense_order(parallel)] == expected


def test_vector_only_equals_filtered_vector_search(world: loomdb.Database) -> None:
    vector = query_vector(9)
    hits = world.query(vector=vector, where={"source": "s1"}, k=7)
    plan = world.explain(vector=vector, where={"source": "s1"}, k=7)
    assert plan.strategy == "vector-only"
    expected = world.vector_search(vector, k=7, where={"source": "s1"})
    assert [h.id for h in hits] == [h.id for h in expected]
    assert all(h.score == pytest.approx(e.score) for h, e in zip(hits, expected, strict=True))


def test_graph_only_ranks_by_nearness(world: loomdb.Database) -> None:
    hits = world.query(near="entity:rivers", hops=2, k=300)
    depth1 = {n.id for n, _ in world.neighbors("entity:rivers", direction="both", limit=1000)}
    ranks = {h.id: i for i, h in enumerate(hits)}
    nearer = [ranks[i] for i in depth1 if i in ranks]
    farther = [r for i, r in ranks.items() if i not in depth1 and i != "entity:rivers"]
    assert nearer and farther and max(nearer) < min(farther)


def test_threshold_and_paging(world: loomdb.Database) -> None:
    vector = query_vector(2)
    everything = world.query(vector=vector, kind="chunk", k=30, strategy="vector-only")
    page2 = world.query(vector=vector, kind="chunk", k=10, offset=10, strategy="vector-only")
    assert [h.id for h in page2] == [h.id for h in everything[10:20]]
    cut = everything[5].scores["dense"]
    above = world.query(vector=vector, kind="chunk", k=30, threshold=cut)
    assert all(h.scores["dense"] >= cut for h in above) and len(above) == 6


# -- planner ---------------------------------------------------------------------------------

def test_planner_prefers_sequential_for_a_small_neighbourhood(world: loomdb.Database) -> None:
    small = world.explain(vector=query_vector(), lexical="rivers", near="entity:rivers",
                          kind="chunk", execute=False)
    assert small.strategy == "hybrid-sequential"
    assert set(small.alternatives) == {"hybrid-parallel", "hybrid-sequential"}
    assert small.alternatives["hybrid-sequential"] < small.alternatives["hybrid-parallel"]
    broad = world.explain(vector=query_vector(), lexical="passage", execute=False)
    assert broad.strategy == "hybrid-parallel"  # no graph part, no selective filter


def test_explain_shows_steps_estimates_and_actuals(world: loomdb.Database) -> None:
    plan = world.find().similar_to(tuple(query_vector())).matching("forests").kind("chunk") \
        .near("entity:forests").limit(5).explain()
    text = plan.render()
    assert plan.strategy in text and "alternatives:" in text and "actual" in text
    assert all(step.actual_ms is not None and step.estimate_ms >= 0 for step in plan.steps)
    assert plan.actual_ms is not None and plan.actual_ms >= 0


def test_the_planner_learns_from_observed_latency(world: loomdb.Database) -> None:
    costs = world.engine.planner.costs
    before = costs.corrections().get("dense", 1.0)
    for seed in range(8):
        world.query(vector=query_vector(seed), k=5, cache=False)
    after = costs.corrections()["dense"]
    assert after != before
    estimate = world.explain(vector=query_vector(), k=5, execute=False).steps[0].estimate_ms
    assert estimate == pytest.approx(costs.corrected("dense", costs.ann_base
                                                     + costs.ann_per_result * 10), rel=0.5)


# -- cache -----------------------------------------------------------------------------------

def test_repeated_queries_hit_the_cache_until_a_write(world: loomdb.Database) -> None:
    vector = query_vector(4)
    first = world.query(vector=vector, k=5)
    engine = world.engine
    assert world.explain(vector=vector, k=5).strategy == "vector-only"  # explain: no cache
    again = engine.run(world.context, Query(semantic=SemanticPart(vector=tuple(vector)), limit=5))
    assert again.cached and again.plan.strategy == "cached-only"
    assert [h.id for h in again.hits] == [h.id for h in first]
    world.add_node("new", kind="chunk", text="fresh", vector=vector)  # the exact query vector
    after = engine.run(world.context, Query(semantic=SemanticPart(vector=tuple(vector)), limit=5))
    assert not after.cached and after.hits[0].id == "new"
    stats = world.query_stats()
    assert stats["cache"].hits >= 1 and stats["queries"]["cached-only"]["p50_ms"] < 5


def test_tenants_and_users_do_not_share_cache_entries(world: loomdb.Database) -> None:
    vector = query_vector(4)
    world.query(vector=vector, k=5, user="ann")
    other = world.tenant("other")
    other.create_space("elsewhere", DIM) if False else None
    assert other.query(vector=vector, k=5) == []  # nothing there: not the cached answer
    result = world.engine.run(world.context, Query(semantic=SemanticPart(vector=tuple(vector)),
                                           limit=5, user="bob"))
    assert not result.cached


# -- personalisation -------------------------------------------------------------------------

def test_boosts_exclusions_and_feedback_rerank_per_user(world: loomdb.Database) -> None:
    vector = query_vector(8)
    base = world.query(vector=vector, kind="chunk", k=10, cache=False)
    world.set_user_policy("ann", boosts={"category": {"odd": 2.0}},
                          exclude={"source": ["s0"]})
    mine = world.query(vector=vector, kind="chunk", k=10, user="ann", cache=False)
    assert len(mine) == 10  # over-fetch refilled the page after exclusions
    assert all(h.node.source != "s0" for h in mine)
    odd_first = [h.node.category for h in mine[:5]]
    assert odd_first.count("odd") > [h.node.category for h in base[:5]].count("odd")
    assert all("personal" in h.scores for h in mine)
    assert world.query(vector=vector, kind="chunk", k=10, user="bob", cache=False) == base
    target = mine[-1]
    for _ in range(10):
        world.feedback("ann", target.id, "useful")
    learned = world.user_policy("ann").learned
    assert learned["source"][target.node.source] > 0 and world.user_policy("bob").empty
    with pytest.raises(InvalidInput):
        world.feedback("ann", target.id, "loved it")
    with pytest.raises(InvalidInput):
        world.set_user_policy("ann", boosts={"colour": {"red": 1.0}})


# -- multi-hop and reasoning -----------------------------------------------------------------

def test_multi_hop_brings_in_passages_that_share_entities(world: loomdb.Database) -> None:
    vector = world.get_vector("c0")  # a rivers passage
    plain = world.query(vector=vector, kind="chunk", k=20, cache=False)
    expanded = world.query(vector=vector, kind="chunk", k=20, multi_hop=True, cache=False)
    assert any("activation" in h.scores for h in expanded)
    rivers = {e.src for e in world.get_edges(dst="entity:rivers", types=["mentions"])}
    share = lambda hits: sum(h.id in rivers for h in hits)  # noqa: E731
    assert share(expanded) > share(plain)


def test_reason_finds_the_strongest_paths_with_support(world: loomdb.Database) -> None:
    paths = world.reason("entity:rivers", "entity:deserts", paths=2)
    assert paths and paths[0].strength >= paths[-1].strength
    best = paths[0]
    assert best.nodes[0].id == "entity:rivers" and best.nodes[-1].id == "entity:deserts"
    for step in best.steps:
        assert step.support or step.edge.type not in ("co_occurs", "mentions")
    assert world.reason("entity:rivers", "c0", paths=1)[0].steps[0].edge.type == "mentions"
    with pytest.raises(NotFound):
        world.reason("entity:rivers", "entity:nowhere")


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("arguments", [
    {}, {"vector": query_vector(), "k": 0}, {"vector": query_vector(), "offset": -1},
    {"vector": query_vector(), "strategy": "telepathy"}, {"near": "x", "hops": 0},
    {"vector": query_vector(), "weights": {"vibes": 1.0}}, {"vector": [[1.0, 2.0]]},
    {"lexical": "   ", "semantic": False, "text": None},
    {"vector": query_vector(), "limit": 5},  # an unknown keyword (k is the one)
    {"vector": query_vector(), "strategy": "cached-only"},  # the cache decides, not the query
])
def test_bad_queries_are_refused(world: loomdb.Database, arguments: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        world.query(**arguments)


def test_query_objects_validate_themselves() -> None:
    with pytest.raises(InvalidInput):
        SemanticPart(text="a", vector=(1.0,))
    with pytest.raises(InvalidInput):
        GraphPart()
    with pytest.raises(InvalidInput):
        Query(limit=5)
    assert Query(kind="chunk").fingerprint() == Query(kind="chunk").fingerprint()
    assert Query(kind="chunk").fingerprint() != Query(kind="entity").fingerprint()


@pytest.mark.ml
def test_text_queries_use_the_stores_provider(enriched_db: loomdb.Database) -> None:
    enriched_db.ingest(text="Marie Curie isolated radium in Paris. She won two Nobel Prizes.",
                       title="curie")
    enriched_db.ingest(text="Penicillin was found by Alexander Fleming in London in 1928.",
                       title="fleming")
    enriched_db.wait_for_enrichment(120)
    hits = enriched_db.query(text="who discovered radium?", kind="chunk", k=2)
    assert "radium" in (hits[0].node.text or "") and hits[0].citation is not None
    assert hits[0].scores["agreement"] == 2.0  # dense and BM25 both found it
    curie = "entity:PERSON:marie curie"
    near = enriched_db.query(text="prizes", near=curie, kind="chunk", k=5)
    assert [h.id for h in near] and all("radium" in (h.node.text or "") for h in near)


def test_the_text_can_be_given_positionally(world: loomdb.Database) -> None:
    assert world.query("rivers passage", semantic=False, k=3) == \
        world.query(text="rivers passage", semantic=False, k=3)
    with pytest.raises(InvalidInput):
        world.query("rivers", text="rivers")
