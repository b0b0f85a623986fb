"""Driver errors reach callers as loomdb errors, the same on every backend.

Each case is provoked through the Backend API (or a foreign client holding the store), and
checked for the loomdb type and that the driver's error is kept as its cause.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path

import numpy as np
import pytest

from loomdb.config import StoreSettings
from loomdb.errors import BackendUnavailable, Busy, Conflict, CorruptStore, InvalidInput, NotFound
from loomdb.model import Edge, Node, VectorSpace
from loomdb.storage.base import Backend
from loomdb.storage.sqlite import SqliteBackend

from ..conftest import make_backend

T = "default"
Opener = Callable[[StoreSettings], Backend]


@pytest.fixture(params=["sqlite-file", "postgres"])
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the same shared store again with other settings (a file, or a database)."""
    url = str(request.getfixturevalue("postgres_url")) if request.param == "postgres" else None
    opened: list[Backend] = []

    def open_store(settings: StoreSettings) -> Backend:
        if url is None:
            opened.append(SqliteBackend(tmp_path / "store", settings))
        else:
            from loomdb.storage.postgres import PostgresBackend

            opened.append(PostgresBackend(url, settings))
        return opened[-1]

    yield open_store
    for store in reversed(opened):
        store.close()


def _driver_cause(error: BaseException) -> bool:
    return type(error.__cause__).__module__.split(".")[0] in ("sqlite3", "psycopg",
                                                              "psycopg_pool")


def test_a_duplicate_node_or_edge_is_a_conflict(backend: Backend) -> None:
    backend.put_nodes(T, [Node("a"), Node("b")], "error")
    backend.put_edges(T, [Edge("a", "b")], "error")
    with pytest.raises(Conflict, match="a node in the batch already exists") as node:
        backend.put_nodes(T, [Node("a")], "error")
    with pytest.raises(Conflict, match="an edge in the batch already exists") as edge:
        backend.put_edges(T, [Edge("a", "b")], "error")
    assert _driver_cause(node.value) and _driver_cause(edge.value)


def test_a_closed_store_is_unavailable(backend: Backend) -> None:
    backend.put_nodes(T, [Node("a")], "error")
    backend.close()
    with pytest.raises(BackendUnavailable) as info:
        backend.get_nodes(T, ["a"])
    assert _driver_cause(info.value)


def test_writing_to_a_read_only_store_is_invalid_input(reopen: Opener) -> None:
    reopen(StoreSettings()).put_nodes(T, [Node("a")], "error")
    reader = reopen(StoreSettings(read_only=True))
    with pytest.raises(InvalidInput, match="read-only") as info:
        reader.put_nodes(T, [Node("b")], "error")
    assert _driver_cause(info.value)
    assert set(reader.get_nodes(T, ["a", "b"])) == {"a"}


@contextmanager
def _locked_by_another_client(store: Backend) -> Iterator[None]:
    """Another program holds the store's write lock (a SQLite or a PostgreSQL client)."""
    if isinstance(store, SqliteBackend):
        assert store.directory is not None
        with closing(sqlite3.connect(store.directory / "loom.db", isolation_level=None)) as c:
            c.execute("BEGIN EXCLUSIVE")
            yield
            c.execute("ROLLBACK")
        return
    import psycopg

    from loomdb.storage.postgres import PostgresBackend

    assert isinstance(store, PostgresBackend)
    with psycopg.connect(store.url) as conn:
        conn.execute("LOCK TABLE nodes IN ACCESS EXCLUSIVE MODE")
        yield
        conn.rollback()


def test_a_store_locked_by_another_client_is_busy(reopen: Opener) -> None:
    store = reopen(StoreSettings(busy_timeout=0.2))
    locked: AbstractContextManager[None] = _locked_by_another_client(store)
    with locked, pytest.raises(Busy, match="retry later") as info:
        store.put_nodes(T, [Node("a")], "error")
    assert _driver_cause(info.value)
    store.put_nodes(T, [Node("a")], "error")  # and it works again once the lock is gone


def test_a_space_deleted_by_another_client_is_not_found(postgres_url: str) -> None:
    """PostgreSQL only: a SQLite store has one writer, so no other client can delete a space
    under it (the case cannot arise there)."""
    from loomdb.storage.postgres import PostgresBackend

    first, other = PostgresBackend(postgres_url), PostgresBackend(postgres_url)
    try:
        first.create_space(VectorSpace("s", 2))
        first.put_nodes(T, [Node("a")], "error")
        assert first.get_space("s").dim == 2  # now remembered by this client
        other.delete_space("s")
        with pytest.raises(NotFound) as info:
            first.put_vectors(T, "s", ["a"], np.ones((1, 2), np.float32))
        assert _driver_cause(info.value)
    finally:
        other.close()
        first.close()


def test_a_file_that_is_no_database_is_a_corrupt_store(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "loom.db").write_bytes(b"not a database, " * 512)
    with pytest.raises(CorruptStore) as info:
        make_backend("sqlite-file", tmp_path)
    assert _driver_cause(info.value)
