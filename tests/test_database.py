"""The Database facade: opening, locking, CRUD semantics, transactions, tenants."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import loomdb
from loomdb import Conflict, InvalidInput, NotFound, StoreLocked


def test_open_memory_and_context_manager() -> None:
    with loomdb.open(":memory:") as db:
        db.add_node("a", text="hello")
        assert db.get_node("a").text == "hello"


def test_file_store_persists(tmp_path: Path) -> None:
    with loomdb.open(tmp_path / "s") as db:
        db.create_space("text", 3, model="m")
        db.add_node("a", kind="chunk", text="hello", props={"p": 1}, vector=[1, 0, 0])
        db.add_node("b")
        db.add_edge("a", "b", "next", weight=0.5)
    with loomdb.open(tmp_path / "s") as db:
        assert db.get_node("a").props == {"p": 1}
        assert db.get_edges(src="a")[0].weight == 0.5
        assert db.vector_search([1, 0, 0], k=1)[0].id == "a"


def test_second_writer_process_fails_fast_naming_the_holder(tmp_path: Path) -> None:
    with loomdb.open(tmp_path / "s"):
        code = (
            "import loomdb, sys\n"
            "try:\n"
            f"    loomdb.open({str(tmp_path / 's')!r})\n"
            "except loomdb.StoreLocked as e:\n"
            "    print(e.code, e); sys.exit(3)\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 3, result.stderr
        assert "store_locked" in result.stdout
        assert "pid" in result.stdout and "read-only" in result.stdout
    with loomdb.open(tmp_path / "s"):  # released on close
        pass


def test_second_writer_in_same_process_is_refused(tmp_path: Path) -> None:
    with loomdb.open(tmp_path / "s"), pytest.raises(StoreLocked):
        loomdb.open(tmp_path / "s")


def test_read_only_open_reads_and_refuses_writes(tmp_path: Path) -> None:
    with loomdb.open(tmp_path / "s") as db:
        db.add_node("a")
        with loomdb.open(tmp_path / "s", read_only=True) as reader:
            assert reader.get_node("a").id == "a"
            with pytest.raises(loomdb.LoomError):
                reader.add_node("b")


def test_add_conflict_and_upsert_semantics(db: loomdb.Database) -> None:
    db.add_node("a", text="one", props={"x": 1})
    with pytest.raises(Conflict):
        db.add_node("a", text="two")
    assert db.get_node("a").text == "one"
    db.upsert_nodes([{"id": "a", "text": "two"}, {"id": "b"}])
    assert db.get_node("a").text == "two" and db.get_node("a").props == {}
    db.add_nodes([{"id": "a", "text": "three"}], on_conflict="ignore")
    assert db.get_node("a").text == "two"


def test_update_and_delete(db: loomdb.Database) -> None:
    db.add_node("a", text="one")
    before = db.get_node("a")
    after = db.update_node("a", text="two", strength=0.5)
    assert (after.text, after.strength, after.created) == ("two", 0.5, before.created)
    assert after.updated is not None and before.updated is not None
    assert after.updated >= before.updated
    assert db.delete_node("a") is True and db.delete_node("a") is False
    with pytest.raises(NotFound):
        db.get_node("a")
    with pytest.raises(NotFound):
        db.update_node("a", text="x")


def test_batch_vector_read_keeps_the_stored_dtype(db: loomdb.Database) -> None:
    db.create_space("text", 2, storage="float64")
    db.add_nodes([{"id": "a"}, {"id": "b"}], vectors=[[0.1, 0.2], [0.3, 0.4]])
    vectors = db.get_vectors(["a", "b", "missing"])
    assert set(vectors) == {"a", "b"} and vectors["a"].dtype == np.float64
    assert vectors["a"].tolist() == [0.1, 0.2]


def test_delete_removes_edges_and_vectors(db: loomdb.Database) -> None:
    db.create_space("text", 2)
    db.add_nodes([{"id": i} for i in "abc"], vectors=np.eye(3, 2))
    db.add_edges([{"src": "a", "dst": "b"}, {"src": "c", "dst": "a"}])
    db.delete_node("a")
    assert db.get_edges() == []
    assert [h.id for h in db.vector_search([1, 0], k=3)] == ["b", "c"]


def test_transaction_commits_all_or_nothing(db: loomdb.Database) -> None:
    db.create_space("text", 2)
    with pytest.raises(ZeroDivisionError), db.transaction():
        db.add_node("a", vector=[1, 0])
        db.add_node("b")
        db.add_edge("a", "b")
        _ = 1 / 0
    assert db.count() == 0 and db.vector_search([1, 0], k=5) == []
    with db.transaction():
        db.add_node("a", vector=[1, 0])
        db.add_node("b")
    assert db.count() == 2 and db.vector_search([1, 0], k=1)[0].id == "a"


def test_batch_with_a_bad_vector_writes_nothing(db: loomdb.Database) -> None:
    db.create_space("text", 2)
    with pytest.raises(loomdb.InvalidVector):
        db.add_nodes([{"id": "a"}, {"id": "b"}], vectors=[[1, 0], [np.nan, 0]])
    assert db.count() == 0


def test_tenant_handles_are_isolated(db: loomdb.Database) -> None:
    db.create_space("text", 2)
    alice, bob = db.tenant("alice"), db.tenant("bob")
    alice.add_node("x", text="secret fox", vector=[1, 0])
    bob.add_node("y", text="public fox", vector=[1, 0])
    assert [h.id for h in alice.vector_search([1, 0], k=10)] == ["x"]
    assert [h.id for h in bob.text_search("fox")] == ["y"]
    assert db.count() == 0 and alice.count() == 1
    with pytest.raises(NotFound):
        bob.get_node("x")
    with pytest.raises(NotFound):
        bob.add_edge("y", "x")
    assert bob.delete_node("x") is False and alice.has_node("x")
    with pytest.raises(InvalidInput):
        db.tenant("../escape")


def test_seq_grows_with_every_committed_change(db: loomdb.Database) -> None:
    first = db.seq
    db.add_node("a")
    second = db.seq
    db.update_node("a", text="t")
    assert first < second < db.seq


def test_closed_store_raises_loom_error(tmp_path: Path) -> None:
    db = loomdb.open(tmp_path / "s")
    db.close()
    db.close()  # idempotent
    with pytest.raises(loomdb.LoomError):
        db.add_node("a")


def test_readers_do_not_wait_for_an_open_write_transaction(file_db: loomdb.Database) -> None:
    import threading

    file_db.add_node("committed", text="fox")
    seen: list[list[str]] = []
    with file_db.transaction():
        file_db.add_node("uncommitted", text="fox")
        assert file_db.has_node("uncommitted")  # the writer's thread sees its own write
        reader = threading.Thread(
            target=lambda: seen.append([n.id for n in file_db.list_nodes()]))
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive(), "reader blocked behind the writer"
    assert seen == [["committed"]]
    assert {n.id for n in file_db.list_nodes()} == {"committed", "uncommitted"}


def test_concurrent_searches_and_writes(file_db: loomdb.Database) -> None:
    from concurrent.futures import ThreadPoolExecutor

    file_db.create_space("text", 4)
    rng = np.random.default_rng(0)
    file_db.add_nodes([{"id": f"n{i}", "text": "fox"} for i in range(200)],
                      vectors=rng.normal(size=(200, 4)))

    def search(i: int) -> int:
        return len(file_db.vector_search(rng.normal(size=4), k=5)) + len(
            file_db.text_search("fox", k=5))

    def write(i: int) -> int:
        file_db.add_node(f"w{i}", text="fox", vector=rng.normal(size=4))
        return 10

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: (write if i % 4 == 0 else search)(i), range(200)))
    assert results == [10] * 200
    assert file_db.count() == 250 and file_db.check() == []


def test_unwritable_location_is_a_loom_error() -> None:
    with pytest.raises(loomdb.LoomError):
        loomdb.open("/proc/no-such-dir/store")


def test_store_from_a_newer_loomdb_is_refused(tmp_path: Path) -> None:
    import sqlite3

    loomdb.open(tmp_path / "s").close()
    with sqlite3.connect(tmp_path / "s" / "loom.db") as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(loomdb.CorruptStore, match="newer"):
        loomdb.open(tmp_path / "s")
    loomdb.open(tmp_path / "s", read_only=True).close()  # read-only never migrates


def test_a_space_created_in_a_rolled_back_transaction_is_gone(db: loomdb.Database) -> None:
    with pytest.raises(RuntimeError), db.transaction():
        db.create_space("temp", 2)
        db.add_node("a", vector=[1, 0], space="temp")
        raise RuntimeError("rollback")
    with pytest.raises(NotFound):
        db.space("temp")


def test_embed_uses_the_stores_provider(enriched_db: loomdb.Database) -> None:
    vectors = enriched_db.embed(["radium glows", "radium glows"])
    assert vectors.shape == (2, enriched_db.context.provider.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert np.allclose(vectors[0], vectors[1])
    with pytest.raises(loomdb.InvalidInput):
        enriched_db.embed("not a list")  # type: ignore[arg-type]


@pytest.mark.timeout(180)
def test_a_script_that_never_closes_the_store_exits_cleanly(tmp_path: Path) -> None:
    """Ending a script without close() while the weaver embeds used to abort the process
    (exit 134: its thread was killed inside ONNX Runtime at finalization). Exit closes the
    store: the weaver stops after its batch, the index is saved, the lock released."""
    store = tmp_path / "s"
    code = (
        "import loomdb, time\n"
        f"db = loomdb.open({str(store)!r})\n"
        "db.ingest(text='Marie Curie isolated radium in Paris. ' * 2000, title='radium')\n"
        "time.sleep(1.0)  # the weaver is now embedding\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=170, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    with loomdb.open(store, weaver=False) as db:  # the lock was released
        assert db.count(kind="chunk") > 0
        assert db.check() == []
