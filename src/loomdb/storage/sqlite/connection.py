"""One SQLite connection shared by threads: a lock, transactions, savepoints; every call
through it has its errors translated (``errors.py``)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .errors import translate_errors

__all__ = ["Connection"]

SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL", "off": "OFF"}


def _connect(target: str, uri: bool, busy_timeout: float) -> sqlite3.Connection:
    conn = sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False,
                           timeout=busy_timeout)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: bulk B-tree inserts stay in memory
    return conn


class Connection:
    """One writer connection with explicit, nestable transactions, plus one read connection
    per thread for file stores.

    Writes take the lock for the whole transaction (SQLite has one writer anyway); a nested
    ``transaction()`` or a write inside one becomes a savepoint, so each call stays atomic.
    Reads outside a transaction go to the calling thread's own connection, which in WAL mode
    sees the last commit without waiting for the writer; reads inside a transaction use the
    writer connection and so see its uncommitted writes.
    """

    def __init__(self, target: str, *, uri: bool, durability: str, busy_timeout: float) -> None:
        self._target, self._uri, self._busy_timeout = target, uri, busy_timeout
        self._pooled = target != ":memory:" and "mode=ro" not in target
        with translate_errors():
            self._conn = _connect(target, uri, busy_timeout)
            if self._pooled:
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS[durability]}")
        self._lock = threading.RLock()
        self._depth = 0
        self._owner: int | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()  # never the writer's lock: readers must not wait
        self._closed = False

    @property
    def raw(self) -> sqlite3.Connection:
        return self._conn

    def in_transaction(self) -> bool:
        return self._depth > 0 and self._owner == threading.get_ident()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Commit everything inside at the end, or roll it all back on an exception."""
        with self._lock, translate_errors():
            if self._depth == 0:
                self._conn.execute("BEGIN IMMEDIATE")
                begin, commit, rollback = None, "COMMIT", "ROLLBACK"
            else:
                name = f"sp{self._depth}"
                self._conn.execute(f"SAVEPOINT {name}")
                begin, commit, rollback = name, f"RELEASE {name}", f"ROLLBACK TO {name}"
            self._depth += 1
            self._owner = threading.get_ident()
            try:
                yield self._conn
            except BaseException:
                self._conn.execute(rollback)
                if begin is not None:
                    self._conn.execute(f"RELEASE {begin}")
                raise
            else:
                try:
                    self._conn.execute(commit)
                except BaseException:
                    if begin is None and self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")  # e.g. disk full: nothing half-kept
                    raise
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self._pooled and not self.in_transaction():
            with translate_errors():
                return self._reader().execute(sql, params).fetchall()
        with self._lock, translate_errors():
            return self._conn.execute(sql, params).fetchall()

    def _reader(self) -> sqlite3.Connection:
        reader: sqlite3.Connection | None = getattr(self._local, "reader", None)
        if reader is None:
            with self._readers_lock:
                if self._closed:
                    raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
                reader = _connect(self._target, self._uri, self._busy_timeout)
                reader.execute("PRAGMA query_only = ON")
                self._readers.append(reader)
            self._local.reader = reader
        return reader

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def close(self) -> None:
        with self._lock, self._readers_lock:
            self._closed = True
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            self._conn.close()
