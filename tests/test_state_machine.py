"""A hypothesis state machine: random operations on a real file store against a dict model.

Invariants after every step: every node, edge and vector equals the model's; exact search
equals brute force; ANN recall@10 >= 0.9 against brute force; no result crosses tenants.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import loomdb
from loomdb import Conflict, NotFound

from . import pg_server

DIM = 8
TENANTS = ["default", "t2"]
IDS = st.sampled_from([f"n{i}" for i in range(12)])
TENANT = st.sampled_from(TENANTS)
TEXT = st.sampled_from(["red fox", "blue whale", "red whale", "green fox jumps", None])
PROPS = st.fixed_dictionaries({"g": st.integers(0, 3)})
VECTOR = st.integers(0, 2**32 - 1).map(
    lambda seed: np.random.default_rng(seed).normal(size=DIM).astype(np.float32))


class Model:
    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TENANTS}
        self.edges: dict[str, dict[tuple[str, str, str], float]] = {t: {} for t in TENANTS}
        self.vectors: dict[str, dict[str, np.ndarray]] = {t: {} for t in TENANTS}

    def delete(self, tenant: str, node_id: str) -> None:
        self.nodes[tenant].pop(node_id, None)
        self.vectors[tenant].pop(node_id, None)
        self.edges[tenant] = {k: w for k, w in self.edges[tenant].items()
                              if node_id not in (k[0], k[1])}

    def copy(self) -> Model:
        clone = Model()
        clone.nodes = {t: {i: dict(n) for i, n in ns.items()} for t, ns in self.nodes.items()}
        clone.edges = {t: dict(es) for t, es in self.edges.items()}
        clone.vectors = {t: dict(vs) for t, vs in self.vectors.items()}
        return clone


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="loomdb-sm-"))
        self.db = self.open_store()
        self.db.create_space("text", DIM, model="m")
        self.model = Model()

    def open_store(self) -> loomdb.Database:
        return loomdb.open(self.directory / "store",
                           index=loomdb.IndexSettings(exact_threshold=0))

    def teardown(self) -> None:
        self.db.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def handle(self, tenant: str) -> loomdb.Database:
        return self.db.tenant(tenant)

    # -- writes ----------------------------------------------------------------------------

    def _add(self, tenant: str, node_id: str, text: str | None, props: dict[str, int],
             vector: np.ndarray | None) -> None:
        db = self.handle(tenant)
        if node_id in self.model.nodes[tenant]:
            with pytest.raises(Conflict):
                db.add_node(node_id, text=text, props=props, vector=vector)
            return
        db.add_node(node_id, text=text, props=props, vector=vector)
        self.model.nodes[tenant][node_id] = {"text": text, "props": props}
        if vector is not None:
            self.model.vectors[tenant][node_id] = vector

    @rule(tenant=TENANT, node_id=IDS, text=TEXT, props=PROPS,
          vector=st.none() | VECTOR)
    def add(self, tenant: str, node_id: str, text: str | None, props: dict[str, int],
            vector: np.ndarray | None) -> None:
        self._add(tenant, node_id, text, props, vector)

    @rule(tenant=TENANT, node_id=IDS, text=TEXT, props=PROPS)
    def upsert(self, tenant: str, node_id: str, text: str | None, props: dict[str, int]) -> None:
        self.handle(tenant).upsert_nodes([{"id": node_id, "text": text, "props": props}])
        self.model.nodes[tenant][node_id] = {"text": text, "props": props}

    @rule(tenant=TENANT, node_id=IDS, text=TEXT)
    def update(self, tenant: str, node_id: str, text: str | None) -> None:
        if node_id not in self.model.nodes[tenant]:
            with pytest.raises(NotFound):
                self.handle(tenant).update_node(node_id, text=text)
            return
        self.handle(tenant).update_node(node_id, text=text)
        self.model.nodes[tenant][node_id]["text"] = text

    @rule(tenant=TENANT, node_id=IDS)
    def delete(self, tenant: str, node_id: str) -> None:
        existed = self.handle(tenant).delete_node(node_id)
        assert existed == (node_id in self.model.nodes[tenant])
        self.model.delete(tenant, node_id)

    @rule(tenant=TENANT, src=IDS, dst=IDS, type_=st.sampled_from(["next", "mentions"]),
          weight=st.sampled_from([0.5, 1.0, 3.0]))
    def link(self, tenant: str, src: str, dst: str, type_: str, weight: float) -> None:
        db, nodes = self.handle(tenant), self.model.nodes[tenant]
        if src not in nodes or dst not in nodes:
            with pytest.raises(NotFound):
                db.add_edge(src, dst, type_, weight)
        elif (src, dst, type_) in self.model.edges[tenant]:
            with pytest.raises(Conflict):
                db.add_edge(src, dst, type_, weight)
        else:
            db.add_edge(src, dst, type_, weight)
            self.model.edges[tenant][(src, dst, type_)] = weight

    @rule(tenant=TENANT, node_id=IDS, vector=VECTOR)
    def set_vector(self, tenant: str, node_id: str, vector: np.ndarray) -> None:
        if node_id not in self.model.nodes[tenant]:
            with pytest.raises(NotFound):
                self.handle(tenant).set_vector(node_id, vector)
            return
        self.handle(tenant).set_vector(node_id, vector)
        self.model.vectors[tenant][node_id] = vector

    @rule(tenant=TENANT, items=st.lists(st.tuples(IDS, TEXT, VECTOR), max_size=4),
          fail=st.booleans())
    def transaction(self, tenant: str, items: list[tuple[str, str | None, np.ndarray]],
                    fail: bool) -> None:
        before = self.model.copy()
        try:
            with self.db.transaction():
                for node_id, text, vector in items:
                    self._add(tenant, node_id, text, {"g": 0}, vector)
                if fail:
                    raise RuntimeError("rollback")
        except RuntimeError:
            self.model = before

    @rule()
    def reopen(self) -> None:
        self.db.close()
        self.db = self.open_store()

    @rule()
    def crash_reopen(self) -> None:
        self.db.backend.close()  # no index save: the next open must catch up from the log
        self.db = self.open_store()

    # -- reads -----------------------------------------------------------------------------

    @precondition(lambda self: any(self.model.vectors.values()))
    @rule(tenant=TENANT, query=VECTOR, group=st.none() | st.integers(0, 3))
    def search(self, tenant: str, query: np.ndarray, group: int | None) -> None:
        db = self.handle(tenant)
        where = None if group is None else {"props.g": group}
        candidates = {i: cosine(v, query) for i, v in self.model.vectors[tenant].items()
                      if group is None or self.model.nodes[tenant][i]["props"]["g"] == group}
        best = sorted(candidates.values(), reverse=True)[:10]
        exact = db.vector_search(query, k=10, where=where, exact=True)
        assert [h.score for h in exact] == pytest.approx(best, abs=1e-5)
        for hit in exact:
            assert hit.node.tenant == tenant
            assert candidates[hit.id] == pytest.approx(hit.score, abs=1e-5)
        approx = db.vector_search(query, k=10, where=where)
        assert len(approx) == len(best)
        assert all(h.node.tenant == tenant and h.id in candidates for h in approx)
        if best:
            found = sum(candidates[h.id] >= best[-1] - 1e-5 for h in approx)
            assert found / len(best) >= 0.9

    @rule(tenant=TENANT, word=st.sampled_from(["fox", "whale", "red"]))
    def text_search(self, tenant: str, word: str) -> None:
        hits = self.handle(tenant).text_search(word, k=20)
        expected = {i for i, n in self.model.nodes[tenant].items()
                    if n["text"] and word in n["text"].split()}
        assert {h.id for h in hits} == expected
        assert all(h.node.tenant == tenant for h in hits)

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def index_holds_exactly_the_stored_vectors(self) -> None:
        assert self.db.check() == []

    @invariant()
    def store_equals_model(self) -> None:
        for tenant in TENANTS:
            db, nodes = self.handle(tenant), self.model.nodes[tenant]
            stored = {n.id: n for n in db.list_nodes(limit=1000)}
            assert set(stored) == set(nodes)
            for node_id, node in stored.items():
                assert (node.text, node.props) == (nodes[node_id]["text"],
                                                   nodes[node_id]["props"])
            edges = {(e.src, e.dst, e.type): e.weight for e in db.get_edges(limit=10_000)}
            assert edges == self.model.edges[tenant]
            vectors = self.model.vectors[tenant]
            stored_vectors = db.backend.get_vectors(tenant, "text", list(nodes))
            assert set(stored_vectors) == set(vectors)
            for node_id, vector in vectors.items():
                np.testing.assert_array_equal(stored_vectors[node_id], vector)


StoreMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
test_store_state_machine = StoreMachine.TestCase


class PostgresStoreMachine(StoreMachine):
    """The same machine on PostgreSQL: one database emptied before each example, native
    vector search (filtered queries through the HNSW index: exact_threshold=0), and
    reopening as a new connection pool."""

    database = url = ""

    def __init__(self) -> None:
        pg_server.reset_database(self.database)
        super().__init__()

    def open_store(self) -> loomdb.Database:
        return loomdb.open(self.url, index=loomdb.IndexSettings(exact_threshold=0))


def test_store_state_machine_postgres(postgres_url: str) -> None:
    PostgresStoreMachine.url = postgres_url
    PostgresStoreMachine.database = postgres_url.rsplit("/", 1)[-1]
    run_state_machine_as_test(PostgresStoreMachine, settings=StoreMachine.TestCase.settings)
