"""What only the postgres backend has: row-level security, server errors, pgvector indexes,
iterative scans, CTE traversals, tsvector ranking, retries and SKIP LOCKED claims.

Everything runs against the session's real PostgreSQL server (tests/pg_server.py).
"""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest

import loomdb
from loomdb.config import IndexSettings, StoreSettings
from loomdb.errors import (
    BackendUnavailable,
    Busy,
    CorruptStore,
    InvalidInput,
    MissingDependency,
    NotFound,
)
from loomdb.filters import parse_filter
from loomdb.graph.traversal import _levels
from loomdb.index import PgvectorIndex
from loomdb.model import Edge, Node, VectorSpace
from loomdb.similarity import exact_scores
from loomdb.storage.base import Backend, JobSpec
from loomdb.storage.postgres import PostgresBackend
from loomdb.storage.postgres.vectors import ANN_SETTINGS, ann_settings, ann_statement

from .. import pg_server
from ..conftest import unit_vectors

T = "default"


@pytest.fixture
def pg(postgres_url: str) -> Iterator[PostgresBackend]:
    backend = PostgresBackend(postgres_url, StoreSettings())
    yield backend
    backend.close()


def raw(url: str) -> psycopg.Connection[Any]:
    """A plain connection as the backend's role, outside everything loomdb sets up."""
    return psycopg.connect(url, autocommit=True)


# -- row-level security -------------------------------------------------------------------


def test_rls_holds_the_role_to_the_transactions_tenant(pg: PostgresBackend,
                                                       postgres_url: str) -> None:
    assert pg.rls_enforced
    for tenant in ("t1", "t2"):
        pg.put_nodes(tenant, [Node("a", text=tenant), Node("b")], "error")
        pg.put_edges(tenant, [Edge("a", "b")], "error")
    with raw(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM nodes").fetchone() == (0,)  # no scope
        assert conn.execute("SELECT count(*) FROM changes").fetchone() == (0,)
        with conn.transaction():
            conn.execute("SELECT set_config('loomdb.tenant', 't1', true)")
            rows = conn.execute("SELECT tenant, count(*) FROM nodes GROUP BY tenant").fetchall()
            assert rows == [("t1", 2)]
            assert conn.execute("SELECT count(*) FROM nodes WHERE tenant = 't2'").fetchone() \
                == (0,)
            assert conn.execute("SELECT count(*) FROM edges").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute("SELECT set_config('loomdb.tenant', 't1', true)")
            conn.execute("INSERT INTO nodes (tenant, id, kind, created, updated) "
                         "VALUES ('t2', 'x', 'k', 0, 0)")
        with conn.transaction():
            conn.execute("SELECT set_config('loomdb.all_tenants', 'on', true)")
            assert conn.execute("SELECT count(*) FROM nodes").fetchone() == (4,)


def test_a_superuser_bypasses_rls_and_the_backend_says_so(postgres_url: str) -> None:
    admin_url = postgres_url.replace(f"{pg_server.ROLE}@", "postgres@", 1)
    backend = PostgresBackend(admin_url, StoreSettings())
    try:
        assert not backend.rls_enforced
        backend.put_nodes("t1", [Node("a")], "error")
        assert backend.get_nodes("t2", ["a"]) == {}  # the queries still filter by tenant
    finally:
        backend.close()


# -- the server: unreachable, no pgvector, too new a schema, read-only ---------------------


def test_unreachable_server_names_host_and_port() -> None:
    url = f"postgresql://loomdb@127.0.0.1:{pg_server._free_port()}/nothing"
    with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1:\d+/nothing") as info:
        loomdb.open(url, busy_timeout=1)
    assert info.value.code == "backend_unavailable"
    assert "refused" in info.value.message or "connect" in info.value.message


def test_missing_pgvector_says_how_to_enable_it() -> None:
    server = pg_server.server()
    name = f"loomdb_novector_{random.randrange(10**9)}"
    server.admin(f"CREATE DATABASE {name} TEMPLATE template0 OWNER {pg_server.ROLE}")
    try:
        with pytest.raises(BackendUnavailable, match="CREATE EXTENSION vector"):
            PostgresBackend(server.url(name), StoreSettings())
        server.admin("CREATE EXTENSION vector", database=name)  # what the message asks for
        backend = PostgresBackend(server.url(name), StoreSettings())
        backend.create_space(VectorSpace("s", 2))
        backend.close()
    finally:
        pg_server.drop_database(name)


def test_a_schema_from_a_newer_loomdb_is_refused(postgres_url: str) -> None:
    with raw(postgres_url) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(CorruptStore, match="newer"):
        PostgresBackend(postgres_url, StoreSettings())


def test_read_only_open_of_an_empty_database_is_not_found() -> None:
    server = pg_server.server()
    name = f"loomdb_empty_{random.randrange(10**9)}"
    server.admin(f"CREATE DATABASE {name} OWNER {pg_server.ROLE}")
    try:
        server.admin("CREATE EXTENSION vector", database=name)
        with pytest.raises(NotFound, match="no loomdb store"):
            PostgresBackend(server.url(name), StoreSettings(read_only=True))
    finally:
        pg_server.drop_database(name)


def test_read_only_refuses_writes(pg: PostgresBackend, postgres_url: str) -> None:
    pg.put_nodes(T, [Node("a")], "error")
    reader = PostgresBackend(postgres_url, StoreSettings(read_only=True))
    try:
        assert set(reader.get_nodes(T, ["a"])) == {"a"}
        with pytest.raises(InvalidInput, match="read-only"):
            reader.put_nodes(T, [Node("b")], "error")
    finally:
        reader.close()


def test_read_only_store_walks_the_graph(pg: PostgresBackend, postgres_url: str) -> None:
    pg.put_nodes(T, [Node("a"), Node("b"), Node("c")], "error")
    pg.put_edges(T, [Edge("a", "b"), Edge("b", "c")], "error")
    with loomdb.open(postgres_url, read_only=True, ml=None, weaver=False) as db:
        assert set(db.expand("a", hops=2).depth) == {"a", "b", "c"}  # looks nodes up unlocked
        path = db.shortest_path("a", "c")
        assert path is not None and [n.id for n in path.nodes] == ["a", "b", "c"]


def test_text_postgres_cannot_store_is_a_clear_error(pg: PostgresBackend) -> None:
    with pytest.raises(InvalidInput, match="text holds a NUL"):
        pg.put_nodes(T, [Node("a", text="x\x00y")], "error")
    with pytest.raises(InvalidInput, match="16000"):
        pg.create_space(VectorSpace("huge", 16_001))
    assert pg.get_nodes(T, ["a"]) == {}


def test_without_the_postgres_extra_open_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in [m for m in sys.modules if m.startswith("loomdb.storage.postgres.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    with pytest.raises(MissingDependency, match=r"pip install 'loomdb\[postgres\]'"):
        loomdb.open("postgresql://nobody@127.0.0.1:1/none")


def test_filter_ids_store_id_and_samples(pg: PostgresBackend, postgres_url: str) -> None:
    pg.put_nodes(T, [Node(f"n{i}", props={"g": i % 3}) for i in range(30)], "error")
    pg.put_nodes("other", [Node("n1", props={"g": 1})], "error")
    where = parse_filter({"props.g": 1})
    ids = ["n4", "ghost", "n1", "n2", "n\x00"]
    assert pg.filter_ids(T, ids, where) == ["n4", "n1"]
    assert pg.filter_ids(T, ids, where) == Backend.filter_ids(pg, T, ids, where)
    store = pg.store_id()
    assert store is not None and store.startswith("loomdb-") and pg.store_id() == store
    other = PostgresBackend(postgres_url, StoreSettings(read_only=True))
    try:
        assert other.store_id() == store  # the database's identity, whoever opens it
    finally:
        other.close()
    sample = pg.sample_nodes(T, 10)
    assert len(sample) == 10 and {n.tenant for n in sample} == {T}


# -- retries and connections ----------------------------------------------------------------


def test_transient_failures_are_retried_only_outside_a_transaction(pg: PostgresBackend) -> None:
    attempts: list[int] = []

    def flaky(conn: psycopg.Connection[Any]) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            conn.execute("DO $$ BEGIN RAISE EXCEPTION 'conflict' "
                         "USING ERRCODE = 'serialization_failure'; END $$")
        return "done"

    assert pg._db.run(flaky, T) == "done" and len(attempts) == 2
    attempts.clear()
    with pytest.raises(Busy), pg.transaction():
        pg._db.run(flaky, T)  # the earlier statements of the transaction would be lost
    assert len(attempts) == 1


def test_a_killed_connection_is_replaced(pg: PostgresBackend) -> None:
    pg.put_nodes(T, [Node("a")], "error")
    pg_server.server().admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE usename = '{pg_server.ROLE}' AND pid <> pg_backend_pid()")
    assert set(pg.get_nodes(T, ["a"])) == {"a"}


def test_concurrent_workers_never_claim_the_same_job(pg: PostgresBackend) -> None:
    pg.enqueue_jobs(T, [JobSpec("embed", f"n{i}") for i in range(200)])
    claimed: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while jobs := pg.claim_jobs(None, 7, lease=60, now=1.0):
            with lock:
                claimed.extend(j.id for j in jobs)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == 200 and len(set(claimed)) == 200


def test_threads_have_their_own_transactions(pg: PostgresBackend) -> None:
    errors: list[BaseException] = []
    started = threading.Barrier(4)

    def writer(n: int) -> None:
        try:
            started.wait()
            for i in range(5):
                with pg.transaction():  # this thread's own connection, not the others'
                    pg.put_nodes(T, [Node(f"w{n}-{i}")], "error")
                    assert pg.in_transaction()
                    if i == 4:
                        raise RuntimeError("roll back")
        except RuntimeError:
            pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and not pg.in_transaction()
    assert pg.count_nodes(T, None) == 4 * 4  # each thread committed 4, rolled back its 5th


# -- vectors: halfvec and binary HNSW, iterative scans, exact re-scoring -------------------


def index_definition(url: str, space: str) -> str:
    with raw(url) as conn:
        rows = conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'vectors' "
                            "AND indexdef LIKE %s", (f"%'{space}'%",)).fetchall()
    assert len(rows) == 1, rows
    return str(rows[0][0])


def plan(url: str, space: VectorSpace, query: np.ndarray, clause: str = "",
         params: tuple[Any, ...] = ()) -> str:
    """EXPLAIN of the statement the backend runs for an index search, as it runs it, on
    tables with statistics (as autovacuum keeps them)."""
    with raw(url) as conn:
        conn.execute("ANALYZE vectors, nodes")
    with raw(url) as conn, conn.transaction():
        conn.execute("SELECT set_config('loomdb.tenant', %s, true)", (T,))
        conn.execute(ANN_SETTINGS, ann_settings(40, 20))
        text = f"{query.tolist()}"
        statement = ann_statement(space, clause).replace("%b::vector", "%s::vector")
        rows = conn.execute(f"EXPLAIN {statement}", (T, *params, text, 20)).fetchall()
    return "\n".join(row[0] for row in rows)


def fill(pg: PostgresBackend, space: VectorSpace, x: np.ndarray) -> None:
    pg.create_space(space)
    pg.put_nodes(T, [Node(f"n{i}", props={"g": i % 100}) for i in range(len(x))], "error")
    pg.put_vectors(T, space.name, [f"n{i}" for i in range(len(x))], x)


def test_halfvec_hnsw_index_per_space(pg: PostgresBackend, postgres_url: str) -> None:
    space = VectorSpace("text", 16, metric="cosine")
    fill(pg, space, unit_vectors(200, 16))
    definition = index_definition(postgres_url, "text")
    assert "USING hnsw (((vec)::halfvec(16)) halfvec_cosine_ops)" in definition
    assert "WHERE (space = 'text'::text)" in definition
    assert "Index Scan using loomdb_ann_" in plan(postgres_url, space, unit_vectors(1, 16)[0])
    pg.create_space(VectorSpace("l2", 8, metric="l2"))
    assert "halfvec_l2_ops" in index_definition(postgres_url, "l2")


def test_binary_quantized_index_is_reranked_exactly(postgres_url: str,
                                                   minilm_vectors: np.ndarray) -> None:
    backend = PostgresBackend(postgres_url, StoreSettings(index=IndexSettings(exact_threshold=0)))
    try:
        space = VectorSpace("bits", 384, quantization="b1")
        x, queries = minilm_vectors[:2000], minilm_vectors[5000:5020]
        fill(backend, space, x)
        assert "binary_quantize(vec))::bit(384)) bit_hamming_ops" in index_definition(
            postgres_url, "bits")
        assert "Index Scan using loomdb_ann_" in plan(postgres_url, space, queries[0])
        recall = []
        for q in queries:
            found = backend.search_vectors(T, space, q, 10, None, exact=False)
            best = np.argsort(-(x @ q))[:10]
            recall.append(len({n.id for n, _ in found} & {f"n{i}" for i in best}) / 10)
            for node, score in found:  # exact scores, not hamming distances
                assert score == pytest.approx(float(x[int(node.id[1:])] @ q), abs=1e-4)
        assert np.mean(recall) >= 0.85  # the floor SQLite's 1-bit index is held to
    finally:
        backend.close()


def test_filtered_search_walks_the_index_iteratively(postgres_url: str) -> None:
    backend = PostgresBackend(postgres_url, StoreSettings(index=IndexSettings(exact_threshold=0)))
    try:
        space = VectorSpace("text", 16)
        x = unit_vectors(3000, 16, seed=7)
        fill(backend, space, x)
        where = parse_filter({"props.g": 3})  # 30 of 3000 match: 1%
        clause, params = backend._where(where)
        assert "Index Scan using loomdb_ann_" in plan(postgres_url, space, x[0], clause,
                                                       tuple(params))
        for q in x[:5]:
            found = backend._ann(T, space, q, 10, clause, params)  # no exact fallback
            assert len(found) == 10 and all(n.props["g"] == 3 for n, _ in found)
            exact = backend.search_vectors(T, space, q, 10, where, exact=True)
            assert len({n.id for n, _ in found} & {n.id for n, _ in exact}) >= 9
    finally:
        backend.close()


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_scores_match_exact_scores(pg: PostgresBackend, metric: str) -> None:
    space = VectorSpace("s", 8, metric=metric)  # type: ignore[arg-type]
    x = unit_vectors(300, 8, seed=2) * np.linspace(0.5, 2, 300)[:, None].astype(np.float32)
    fill(pg, space, x)
    q = x[7] * 0.5
    expected = exact_scores(space, q, x)
    for exact in (True, False):
        found = pg.search_vectors(T, space, q, 10, None, exact)
        assert [s for _, s in found] == pytest.approx(sorted(expected, reverse=True)[:10],
                                                      abs=1e-5)


def test_wide_spaces_have_no_index_and_search_exactly(pg: PostgresBackend,
                                                      postgres_url: str) -> None:
    space = VectorSpace("wide", 4_100)
    x = unit_vectors(20, 4_100)
    fill(pg, space, x)
    with raw(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexdef LIKE "
                            "'%''wide''%'").fetchone() == (0,)
    found = pg.search_vectors(T, space, x[3], 3, None, exact=False)
    assert found[0][0].id == "n3" and len(found) == 3


def test_float64_and_float16_storage_round_trip(pg: PostgresBackend) -> None:
    pg.put_nodes(T, [Node("a")], "error")
    for storage in ("float64", "float16"):
        pg.create_space(VectorSpace(storage, 3, storage=storage))  # type: ignore[arg-type]
        vector = np.array([[0.1, 1 / 3, -2.5e-3]], dtype=np.float64)
        pg.put_vectors(T, storage, ["a"], vector)
        stored = pg.get_vectors(T, storage, ["a"])["a"]
        assert stored.dtype == np.dtype(storage)
        np.testing.assert_array_equal(stored, vector[0].astype(storage))


# -- graph: recursive CTEs against the generic walk ------------------------------------------


def random_graph(pg: PostgresBackend, n: int, m: int, seed: int, hub: bool) -> None:
    rng = random.Random(seed)
    pg.put_nodes(T, [Node(f"v{i}") for i in range(n)], "error")
    edges: dict[tuple[str, str, str], float] = {}
    while len(edges) < m:
        a = 0 if hub and rng.random() < 0.5 else rng.randrange(n)
        b = rng.randrange(n)
        edges[(f"v{a}", f"v{b}", rng.choice("xy"))] = rng.choice([0.5, 1.0, 2.0])
    pg.put_edges(T, [Edge(a, b, t, weight=w) for (a, b, t), w in edges.items()], "error")


@pytest.mark.parametrize(("seed", "hub"), [(1, False), (2, True), (3, True)])
def test_cte_expansion_equals_the_generic_walk(pg: PostgresBackend, seed: int,
                                                hub: bool) -> None:
    random_graph(pg, 150, 600, seed, hub)  # a hub of ~300 edges makes the fan-out bound bite
    rng = random.Random(seed)
    for _ in range(60):
        seeds = [f"v{rng.randrange(150)}" for _ in range(rng.choice([1, 1, 3]))]
        if hub and rng.random() < 0.5:
            seeds[0] = "v0"
        args = (seeds, rng.randrange(1, 5), rng.choice([None, ["x"]]),
                rng.choice(["out", "in", "both"]), rng.choice([1, 5, 20, 1000]))
        assert pg.expand_ids(T, *args) == _levels(pg, T, *args), args  # type: ignore[arg-type]


def test_cte_shortest_path_is_shortest_and_a_real_walk(pg: PostgresBackend) -> None:
    networkx = pytest.importorskip("networkx")
    random_graph(pg, 120, 300, 4, hub=False)
    graph = networkx.DiGraph((e.src, e.dst) for e in pg.get_edges(T, limit=10_000))
    graph.add_nodes_from(f"v{i}" for i in range(120))
    views = {"out": graph, "in": graph.reverse(), "both": graph.to_undirected()}
    rng = random.Random(4)
    for _ in range(60):
        a, b = f"v{rng.randrange(120)}", f"v{rng.randrange(120)}"
        direction = rng.choice(["out", "in", "both"])
        if a == b:
            continue
        path = pg.shortest_path_edges(T, a, b, 20, None, direction)  # type: ignore[arg-type]
        if not networkx.has_path(views[direction], a, b):
            assert path is None
            continue
        assert path is not None
        assert len(path) == networkx.shortest_path_length(views[direction], a, b)
        at = a
        for edge in path:
            assert at in (edge.src, edge.dst)
            at = edge.dst if edge.src == at and direction != "in" else edge.src
        assert at == b
    assert pg.shortest_path_edges(T, "v1", "v2", 0, None, "out") is None


# -- full text: tsvector and ts_rank_cd ------------------------------------------------------


def test_full_text_ranks_with_ts_rank_cd(pg: PostgresBackend) -> None:
    pg.put_nodes(T, [Node("a", text="the fox"), Node("b", text="fox fox fox"),
                     Node("c", text="the whale and the fox swim"), Node("d", text="Café")],
                 "error")
    found = pg.text_search(T, "fox", 10, None)
    assert found[0][0].id == "b" and {n.id for n, _ in found} == {"a", "b", "c"}
    assert all(score > 0 for _, score in found)
    assert {n.id for n, _ in pg.text_search(T, "whale | the & !", 10, None)} == {"a", "c"}
    assert [n.id for n, _ in pg.text_search(T, "café", 10, None)] == ["d"]  # lowercased
    assert pg.text_search(T, "cafe", 10, None) == []  # accents are kept (no unaccent)


def test_full_text_covers_the_start_of_huge_texts(pg: PostgresBackend) -> None:
    rng = random.Random(0)
    words = ["".join(rng.choices("abcdefghij", k=12)) for _ in range(120_000)]  # 1.5 MB
    pg.put_nodes(T, [Node("big", text=" ".join(words))], "error")
    assert [n.id for n, _ in pg.text_search(T, words[0], 10, None)] == ["big"]
    assert pg.text_search(T, words[-1], 10, None) == []  # beyond 250,000 characters
    assert pg.get_nodes(T, ["big"])["big"].text == " ".join(words)


def test_the_facade_purges_the_log_and_uses_no_faiss_view(postgres_url: str) -> None:
    """No index files on postgres: its index is pgvector's (no faiss view is built), a
    checkpoint covers the whole change log, and check(), warm_up() and reindex() have
    nothing of their own to do."""
    db = loomdb.open(postgres_url, ml=None, weaver=False)
    try:
        db.create_space("text", 4)
        db.add_nodes([{"id": f"n{i}", "text": f"node {i}"} for i in range(20)],
                     vectors=np.eye(4, dtype=np.float32)[np.arange(20) % 4])
        assert db.stats()["log_entries"] >= 40
        db.checkpoint()
        assert db.stats()["log_entries"] == 0 and db.seq > 0
        assert db.check() == [] and db.warm_up() == 0 and db.reindex() == {}
        assert isinstance(db.view, PgvectorIndex)  # never the faiss view
        assert set(db.text_search("node", k=3)[0].scores) == {"ts_rank_cd"}
        db.add_node("later", text="after the checkpoint")
        assert db.vector_search(np.eye(4, dtype=np.float32)[1], k=5)[0].score == 1.0
    finally:
        db.close()
