"""One SQLite connection shared by threads: a lock, transactions, savepoints, error mapping."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ...errors import BackendUnavailable, Busy, Conflict, CorruptStore, InvalidInput, LoomError

__all__ = ["Connection", "translate_errors"]

SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL", "off": "OFF"}


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn sqlite3 errors into loomdb errors at the backend boundary."""
    try:
        yield
    except LoomError:
        raise
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"write conflicts with existing data: {exc}") from exc
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise Busy(f"store is busy: {text}; retry later") from exc
        if "readonly" in text:
            raise InvalidInput("store is open read-only; open it without read_only to write") from exc
        raise BackendUnavailable(f"sqlite error: {text}") from exc
    except sqlite3.DatabaseError as exc:
        raise CorruptStore(f"sqlite reports a damaged store: {exc}") from exc
    except sqlite3.ProgrammingError as exc:
        raise BackendUnavailable(f"store is closed or misused: {exc}") from exc


class Connection:
    """A connection in autocommit mode with explicit, nestable transactions.

    Writes take the lock for the whole transaction (SQLite has one writer anyway); a nested
    ``transaction()`` or a write inside one becomes a savepoint, so each call stays atomic.
    """

    def __init__(self, target: str, *, uri: bool, durability: str, busy_timeout: float) -> None:
        with translate_errors():
            self._conn = sqlite3.connect(
                target, uri=uri, isolation_level=None, check_same_thread=False,
                timeout=busy_timeout,
            )
            self._conn.execute("PRAGMA foreign_keys = ON")
            if target != ":memory:" and "mode=ro" not in target:
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS[durability]}")
        self._lock = threading.RLock()
        self._depth = 0
        self._owner: int | None = None

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
                self._conn.execute(commit)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock, translate_errors():
            return self._conn.execute(sql, params).fetchall()

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
