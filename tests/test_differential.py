"""Differential test: one random sequence of operations on SQLite and on PostgreSQL, side by
side, must give the same answers.

A hypothesis state machine applies each write (add, upsert, update, delete nodes; add, upsert,
delete edges; set and delete vectors; transactions that commit or roll back; two tenants) to
both stores and checks both succeed alike or fail with the same error. After every step, for
each tenant, it compares:

- every node, ``list_nodes`` (insertion order) and ``count`` with filters, with limits and
  offsets: equal, all fields but ``updated`` (each store stamps its own clock);
- ``get_edges`` (all, by source, by type): equal lists;
- ``neighbors`` (out, in, both), 2-hop ``expand`` (nodes with their depth, and edges), and
  ``shortest_path``: the same length unweighted (PostgreSQL's recursive CTE may pick another
  path among equally short ones, so the path's edges must be real and chained, not equal) and
  the same cost weighted;
- ``vector_search`` exact and through the ANN index, plain and filtered, in two spaces
  (cosine f32/float32, inner product f16/float16): ids ranked the same, allowing any order
  among scores within 1e-5 (vectors come from a small pool, so ties are common);
- ``text_search``: the *set* of nodes matching one word (k above the number of nodes), since
  BM25 (SQLite) and ``ts_rank_cd`` (PostgreSQL) score on different scales; texts are plain
  ASCII words, which both tokenizers split alike. One word, because SQLite leaves the words
  of a longer query that are in over 20% of the documents out of it (``storage/sqlite/fts``)
  and PostgreSQL does not: on these small stores every word is that common;
- ``stats``: nodes by kind, edges by type, vectors by space.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

import loomdb
from loomdb import LoomError
from loomdb.interchange.migrate.checks import same_ranking

from . import pg_server

DIM = 6
TENANTS = ["default", "t2"]
IDS = [f"n{i}" for i in range(10)]
ID = st.sampled_from(IDS)
TENANT = st.sampled_from(TENANTS)
TEXT = st.sampled_from(["red fox", "blue whale", "red whale jumps", "green fox jumps high",
                        None])
KIND = st.sampled_from(["chunk", "entity"])
PROPS = st.fixed_dictionaries({"g": st.integers(0, 3)},
                              optional={"tags": st.lists(st.sampled_from("abc"), max_size=2)})
POOL = np.random.default_rng(3).normal(size=(5, DIM)).round(2)
VECTOR = st.integers(0, len(POOL) - 1).map(lambda i: POOL[i])  # few vectors: many score ties
SPACE = st.sampled_from(["text", "half"])
EDGE_TYPE = st.sampled_from(["next", "mentions"])
WEIGHT = st.sampled_from([0.5, 1.0, 2.0])
FILTERS: list[dict[str, Any] | None] = [
    None, {"props.g": 1}, {"props.g": {"$gte": 2}}, {"kind": "entity"},
    {"$or": [{"props.g": 0}, {"kind": "chunk"}]}]
PAGES = [(None, 100, 0), (FILTERS[1], 100, 0), (FILTERS[4], 3, 2)]  # where, limit, offset
INDEX = loomdb.IndexSettings(exact_threshold=0)  # filtered searches go through the index too
CREATED = 1_700_000_000.0


def node_fields(node: loomdb.Node) -> dict[str, Any]:
    return {k: v for k, v in node.__dict__.items() if k != "updated"}


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """What a call did: its result, or the class of the loomdb error it raised."""
    try:
        return "ok", call()
    except LoomError as exc:
        return "error", type(exc).__name__


class Differential(RuleBasedStateMachine):
    """Both stores get every operation; every answer must agree."""

    url = database = ""

    def __init__(self) -> None:
        super().__init__()
        pg_server.reset_database(self.database)
        self.directory = Path(tempfile.mkdtemp(prefix="loomdb-diff-"))
        self.stores = [loomdb.open(where, ml=None, weaver=False, index=INDEX, durability="off")
                       for where in (self.directory / "store", self.url)]
        for db in self.stores:
            db.create_space("text", DIM, model="m")
            db.create_space("half", DIM, model="m", metric="ip", quantization="f16",
                            storage="float16")
        self.clock = CREATED

    def teardown(self) -> None:
        for db in self.stores:
            db.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def both(self, tenant: str, call: Callable[[loomdb.Database], Any]) -> Any:
        """Apply ``call`` to each store's tenant; they must succeed or fail alike."""
        results = [outcome(lambda db=db: call(db.tenant(tenant))) for db in self.stores]
        assert results[0] == results[1], results
        return results[0]

    def stamp(self) -> float:
        self.clock += 1.0
        return self.clock

    # -- writes ----------------------------------------------------------------------------

    @rule(tenant=TENANT, ids=st.lists(ID, min_size=1, max_size=3), text=TEXT, kind=KIND,
          props=PROPS, space=SPACE, vector=st.none() | VECTOR,
          mode=st.sampled_from(["error", "replace", "ignore"]))
    def add_nodes(self, tenant: str, ids: list[str], text: str | None, kind: str,
                  props: dict[str, Any], space: str, vector: np.ndarray | None,
                  mode: str) -> None:
        created = self.stamp()
        nodes = [{"id": i, "text": text, "kind": kind, "props": props, "created": created,
                  "strength": 0.5, "access_count": 2} for i in ids]
        vectors = None if vector is None else [vector] * len(ids)
        self.both(tenant, lambda db: db.add_nodes(nodes, vectors=vectors, space=space,
                                                  on_conflict=mode))

    @rule(tenant=TENANT, node_id=ID, text=TEXT, props=PROPS, strength=st.floats(0, 1))
    def update_node(self, tenant: str, node_id: str, text: str | None, props: dict[str, Any],
                    strength: float) -> None:
        self.both(tenant, lambda db: node_fields(
            db.update_node(node_id, text=text, props=props, strength=strength)))

    @rule(tenant=TENANT, ids=st.lists(ID, max_size=3))
    def delete_nodes(self, tenant: str, ids: list[str]) -> None:
        self.both(tenant, lambda db: db.delete_nodes(ids))

    @rule(tenant=TENANT, src=ID, dst=ID, type_=EDGE_TYPE, weight=WEIGHT, upsert=st.booleans())
    def add_edge(self, tenant: str, src: str, dst: str, type_: str, weight: float,
                 upsert: bool) -> None:
        edge = {"src": src, "dst": dst, "type": type_, "weight": weight,
                "props": {"w": weight}, "created": self.stamp()}
        self.both(tenant, lambda db: db.add_edges(
            [edge], on_conflict="replace" if upsert else "error"))

    @rule(tenant=TENANT, src=ID, dst=ID, type_=EDGE_TYPE)
    def delete_edge(self, tenant: str, src: str, dst: str, type_: str) -> None:
        self.both(tenant, lambda db: db.delete_edge(src, dst, type_))

    @rule(tenant=TENANT, node_id=ID, space=SPACE, vector=VECTOR, delete=st.booleans())
    def vector(self, tenant: str, node_id: str, space: str, vector: np.ndarray,
               delete: bool) -> None:
        if delete:
            self.both(tenant, lambda db: db.delete_vector(node_id, space=space))
        else:
            self.both(tenant, lambda db: db.set_vector(node_id, vector, space=space))

    @rule(tenant=TENANT, ids=st.lists(ID, min_size=1, max_size=3), vector=VECTOR,
          fail=st.booleans())
    def transaction(self, tenant: str, ids: list[str], vector: np.ndarray, fail: bool) -> None:
        created = self.stamp()

        def write(db: loomdb.Database) -> None:
            with db.transaction():
                for node_id in ids:
                    db.upsert_nodes([{"id": node_id, "text": "fox in a transaction",
                                      "created": created}], vectors=[vector])
                    db.add_edges([{"src": ids[0], "dst": node_id, "created": created}],
                                 on_conflict="ignore")
                if fail:
                    raise loomdb.InvalidInput("roll back")

        self.both(tenant, write)

    # -- answers ---------------------------------------------------------------------------

    @invariant()
    def same_nodes_and_edges(self) -> None:
        for tenant in TENANTS:
            a, b = (db.tenant(tenant) for db in self.stores)
            assert ({k: node_fields(v) for k, v in a.get_nodes(IDS).items()}
                    == {k: node_fields(v) for k, v in b.get_nodes(IDS).items()})
            for where in FILTERS:
                assert a.count(where) == b.count(where)
            for where, limit, offset in PAGES:
                mine, theirs = ([node_fields(n) for n in db.list_nodes(
                    where, limit=limit, offset=offset)] for db in (a, b))
                assert mine == theirs
            assert a.get_edges() == b.get_edges()
            assert a.get_edges(src="n1") == b.get_edges(src="n1")
            assert a.get_edges(types=["mentions"]) == b.get_edges(types=["mentions"])
            stats = [{k: db.stats()[k] for k in ("nodes", "edges", "vectors")} for db in (a, b)]
            assert stats[0] == stats[1]

    @invariant()
    def same_graph_answers(self) -> None:
        for tenant in TENANTS:
            a, b = (db.tenant(tenant) for db in self.stores)
            present = sorted(a.get_nodes(IDS))
            for node_id in present[:3]:
                for direction in ("out", "in", "both"):
                    mine, theirs = ([(n.id, e) for n, e in db.neighbors(
                        node_id, direction=direction)] for db in (a, b))
                    assert mine == theirs
                sub = [db.expand(node_id, hops=2, direction="both") for db in (a, b)]
                assert [n.id for n in sub[0].nodes] == [n.id for n in sub[1].nodes]
                assert sub[0].depth == sub[1].depth and sub[0].edges == sub[1].edges
            for start, goal in zip(present[:3], present[-3:], strict=False):
                if start != goal:
                    self.same_paths(a, b, start, goal)

    @staticmethod
    def same_paths(a: loomdb.Database, b: loomdb.Database, start: str, goal: str) -> None:
        paths = [db.shortest_path(start, goal, direction="both") for db in (a, b)]
        assert (paths[0] is None) == (paths[1] is None)
        stored = {(e.src, e.dst, e.type) for e in a.get_edges()}
        for path in paths:
            if path is None:
                continue
            assert len(path) == len(paths[0])  # type: ignore[arg-type]
            assert (path.nodes[0].id, path.nodes[-1].id) == (start, goal)
            for edge, here, there in zip(path.edges, path.nodes, path.nodes[1:], strict=False):
                key = (edge.src, edge.dst, edge.type)
                assert key in stored and {edge.src, edge.dst} == {here.id, there.id}
        costs = [None if p is None else p.cost
                 for p in (db.shortest_path(start, goal, weighted=True) for db in (a, b))]
        assert costs[0] == pytest.approx(costs[1])

    @invariant()
    def same_search_answers(self) -> None:
        for tenant in TENANTS:
            a, b = (db.tenant(tenant) for db in self.stores)
            for space in ("text", "half"):
                for query in POOL[:1]:
                    for where in FILTERS[:2]:
                        for exact in (True, False):
                            mine, theirs = ([(h.id, h.score) for h in db.vector_search(
                                query, k=4, space=space, where=where, exact=exact)]
                                for db in (a, b))
                            assert same_ranking(mine, theirs) is None, (mine, theirs)
            for word in ("fox", "whale", "jumps", "high"):
                found = [{h.id for h in db.text_search(word, k=50)} for db in (a, b)]
                assert found[0] == found[1]


Differential.TestCase.settings = settings(
    max_examples=10, stateful_step_count=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_sqlite_and_postgres_answer_alike(postgres_url: str) -> None:
    Differential.url = postgres_url
    Differential.database = postgres_url.rsplit("/", 1)[-1]
    run_state_machine_as_test(Differential, settings=Differential.TestCase.settings)


def test_search_ties_are_judged_by_score() -> None:
    """The comparison the search checks rely on: tied scores may come in any order."""
    assert same_ranking([("a", 1.0), ("b", 0.5), ("c", 0.5)],
                        [("a", 1.0), ("c", 0.5), ("d", 0.5)]) is None  # cut among ties
    assert same_ranking([("a", 1.0), ("b", 0.9)], [("b", 1.0), ("a", 0.9)]) is not None
    assert same_ranking([("a", 0.7), ("b", 0.7), ("c", 0.1)],
                        [("b", 0.7), ("a", 0.7), ("c", 0.1)]) is None
    with pytest.raises(AssertionError):
        assert same_ranking([("a", 1.0)], []) is None
