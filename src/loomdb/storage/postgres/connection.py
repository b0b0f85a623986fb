"""Connections to PostgreSQL: a pool, per-thread nestable transactions, the tenant scope that
row-level security checks, and retries of transient failures (driver errors are translated
by ``errors.py``).

Every statement runs inside a transaction whose first act is to set the tenant scope
(``loomdb.tenant``, or ``loomdb.all_tenants`` for the few cross-tenant operations) with
``set_config(..., true)``: transaction-local, so a pooled connection never carries one
caller's tenant into another's work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from ...errors import BackendUnavailable, Busy, LoomError
from .errors import retryable, translate_errors

__all__ = ["ALL_TENANTS", "Connection", "describe"]

log = logging.getLogger(__name__)
T = TypeVar("T")
Conn = psycopg.Connection[Any]
ALL_TENANTS = None  # the scope of cross-tenant operations (jobs, the log, seq)
RETRIES = 4
SYNCHRONOUS = {"full": "on", "normal": "local", "off": "off"}


class _Transient(Exception):
    """A failure after which the whole unit of work may safely run again."""

    def __init__(self, error: LoomError) -> None:
        super().__init__(error.message)
        self.error = error


def describe(url: str) -> str:
    """``host:port/database`` of a connection URL, for error messages (never the password)."""
    parts = urlsplit(url)
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    host = parts.hostname or query.get("host") or "localhost"
    port = parts.port or query.get("port") or 5432
    return f"{host}:{port}{parts.path or '/'}"


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _Transient)


def _scope(tenant: str | None) -> sql.SQL | sql.Composed:
    """The statement that scopes a transaction to ``tenant`` (``None``: all tenants). The
    name is quoted as a literal, so it can ride in a multi-statement string with BEGIN."""
    if tenant is None:
        return sql.SQL("SELECT set_config('loomdb.all_tenants', 'on', true)")
    return sql.SQL("SELECT set_config('loomdb.all_tenants', 'off', true), "
                   "set_config('loomdb.tenant', {}, true)").format(sql.Literal(tenant))


def _then(first: sql.SQL, then: sql.SQL | sql.Composed | None) -> sql.SQL | sql.Composed:
    return first if then is None else sql.Composed([first, sql.SQL("; "), then])


@dataclass
class _Thread:
    """The calling thread's open transaction: its connection and savepoint depth."""

    conn: Conn | None = None
    depth: int = 0


class Connection:
    """A pool of autocommit connections; transactions are explicit and per thread.

    ``run(work, tenant)`` runs ``work(conn)`` in a transaction of its own, retried as a whole
    after a serialization failure, a deadlock or a connection lost before commit. Inside
    ``transaction()`` it runs in a savepoint of the thread's transaction instead, so a failing
    call undoes only itself, and is never retried (the caller's earlier statements are part of
    the same transaction and would be lost).
    """

    def __init__(self, url: str, *, durability: str, read_only: bool, busy_timeout: float,
                 pool_size: int, configure: Callable[[Conn], None]) -> None:
        self.where = describe(url)
        self._local = threading.local()
        settings = {"synchronous_commit": SYNCHRONOUS[durability],
                    "lock_timeout": f"{int(busy_timeout * 1000)}ms",
                    "default_transaction_read_only": "on" if read_only else "off",
                    # psycopg prepares repeated statements; a generic plan ignores the values
                    # (a seed, a vector, a filter) that decide how a traversal or search
                    # should run, so every execution is planned for its own parameters
                    "plan_cache_mode": "force_custom_plan"}
        # session settings ride in the startup packet: no round trip per new connection
        options = " ".join(f"-c {name}={value}" for name, value in settings.items())
        self._pool = ConnectionPool(
            url, min_size=1, max_size=pool_size, configure=configure,
            kwargs={"autocommit": True, "options": options},
            timeout=max(busy_timeout, 1.0), open=False, name=f"loomdb:{self.where}",
        )
        with translate_errors(self.where):
            self._pool.open(wait=True, timeout=max(busy_timeout, 5.0))

    @property
    def _thread(self) -> _Thread:
        state: _Thread | None = getattr(self._local, "state", None)
        if state is None:
            state = self._local.state = _Thread()
        return state

    def in_transaction(self) -> bool:
        return self._thread.depth > 0

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def transaction(self, scope: sql.SQL | sql.Composed | None = None) -> Iterator[Conn]:
        """The thread's transaction: BEGIN at the outermost level, a savepoint inside.
        ``scope`` (a tenant scope statement) is sent along, in the same round trip."""
        state = self._thread
        if state.conn is not None:
            with self._savepoint(state, scope) as conn:
                yield conn
            return
        with translate_errors(self.where):
            conn = self._pool.getconn()
        try:
            with translate_errors(self.where):
                conn.execute(_then(sql.SQL("BEGIN"), scope))
            state.conn, state.depth = conn, 1
            try:
                yield conn
            except BaseException:
                self._rollback(conn)
                raise
            with translate_errors(self.where):
                try:
                    conn.execute("COMMIT")
                except psycopg.OperationalError as exc:
                    raise BackendUnavailable(
                        f"the connection to {self.where} broke while committing; whether the "
                        "transaction was applied is unknown") from exc
        finally:
            state.conn, state.depth = None, 0
            self._pool.putconn(conn)

    @contextmanager
    def _savepoint(self, state: _Thread, scope: sql.SQL | sql.Composed | None) -> Iterator[Conn]:
        conn = state.conn
        assert conn is not None
        name = f"loomdb_sp{state.depth}"
        with translate_errors(self.where):
            conn.execute(_then(sql.SQL(f"SAVEPOINT {name}"), scope))
        state.depth += 1
        try:
            yield conn
        except BaseException:
            with translate_errors(self.where):
                if not conn.closed and not conn.broken:
                    conn.execute(f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}")
            raise
        else:
            with translate_errors(self.where):
                conn.execute(f"RELEASE SAVEPOINT {name}")
        finally:
            state.depth -= 1

    @staticmethod
    def _rollback(conn: Conn) -> None:
        if not conn.closed and not conn.broken:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:
                log.debug("rollback failed on a connection the pool will discard", exc_info=True)

    # -- units of work ---------------------------------------------------------------------

    def run(self, work: Callable[[Conn], T], tenant: str | None) -> T:
        """``work(conn)`` in a transaction scoped to ``tenant`` (``ALL_TENANTS``: every one)."""
        if self.in_transaction():
            with self.transaction(_scope(tenant)) as conn, translate_errors(self.where):
                return work(conn)
        retrying = Retrying(retry=retry_if_exception(_is_transient),
                            stop=stop_after_attempt(RETRIES), reraise=True,
                            wait=wait_random_exponential(multiplier=0.02, max=1.0))
        try:
            result: T = retrying(self._once, work, tenant)
        except _Transient as exc:
            raise exc.error from exc.error.__cause__
        return result

    def _once(self, work: Callable[[Conn], T], tenant: str | None) -> T:
        committing = False
        try:
            with self.transaction(_scope(tenant)) as conn:
                with translate_errors(self.where):
                    result = work(conn)
                committing = True
            return result
        except (BackendUnavailable, Busy) as exc:
            if retryable(exc.__cause__, committing):
                raise _Transient(exc) from exc
            raise

    def query(self, statement: str, params: Any = (), *, tenant: str | None) -> list[Any]:
        """Rows of one read statement, in ``tenant``'s scope."""
        def fetch(conn: Conn) -> list[Any]:
            return conn.execute(statement, params).fetchall()

        return self.run(fetch, tenant)

    def scalar(self, statement: str, params: Any = (), *, tenant: str | None) -> Any:
        rows = self.query(statement, params, tenant=tenant)
        return rows[0][0] if rows else None

    def close(self) -> None:
        self._pool.close()
