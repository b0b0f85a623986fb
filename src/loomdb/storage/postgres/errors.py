"""psycopg errors as loomdb errors: the one place that reads PostgreSQL's SQLSTATE codes.

The server names each failure with a five-character SQLSTATE (``exc.sqlstate``); the first
two characters are its class. The translation reads those codes, never a message's wording;
client-side failures (no connection at all) have no SQLSTATE and are told apart by class.

=======================================  ==========================================
SQLSTATE                                  loomdb error
=======================================  ==========================================
23505 unique_violation                    Conflict (duplicate)
23503 foreign_key_violation               NotFound
class 23, any other integrity violation   Conflict
25006 read_only_sql_transaction           InvalidInput
40001 serialization_failure,              Busy (retried outside a transaction when
40P01 deadlock_detected                   the work surely did not commit)
55P03 lock_not_available,                 Busy
57014 query_canceled (statement timeout)
class 22 data exception,                  InvalidInput
54000 program_limit_exceeded
a pool timeout (no connection free)       Busy
any other OperationalError                BackendUnavailable (connection lost)
anything else                             BackendUnavailable
=======================================  ==========================================
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import psycopg
from psycopg_pool import PoolTimeout

from ...errors import BackendUnavailable, Busy, Conflict, InvalidInput, LoomError, NotFound

__all__ = ["conflict_on_duplicate", "retryable", "translate", "translate_errors"]

UNIQUE_VIOLATION: Final = "23505"
ROLLED_BACK: Final = frozenset({"40001", "40P01"})  # serialization failure, deadlock
CONNECTION_LOST: Final = frozenset({"57P01", "57P02", "57P03"})  # shutdown, cannot connect now
Translation = tuple[type[LoomError], str]  # the error, and its message: {detail} is the
# server's primary message, {exc} the whole error, {where} the server


def _primary(exc: psycopg.Error) -> str:
    return exc.diag.message_primary or str(exc).strip()


_BUSY: Final[Translation] = (Busy, "PostgreSQL at {where} is busy: {detail}; retry later")
_CANNOT_STORE: Final[Translation] = (InvalidInput, "PostgreSQL cannot store this value: {exc}")

BY_SQLSTATE: Final[dict[str, Translation]] = {
    UNIQUE_VIOLATION: (Conflict, "write conflicts with existing data: {detail}"),
    "23503": (NotFound, "a referenced row does not exist: {detail}"),
    "25006": (InvalidInput, "store is open read-only; open it for writing to write"),
    **dict.fromkeys(ROLLED_BACK, _BUSY),
    "55P03": _BUSY,
    "57014": _BUSY,
    "54000": _CANNOT_STORE,
}
BY_CLASS: Final[dict[str, Translation]] = {
    "23": (Conflict, "write violates a constraint: {detail}"),
    "22": _CANNOT_STORE,
}


def translate(exc: psycopg.Error, where: str) -> LoomError:
    """The loomdb error for a psycopg error, chosen by its SQLSTATE; ``where`` names the
    server (``host:port/database``) in messages."""
    if isinstance(exc, PoolTimeout):
        return Busy(f"no PostgreSQL connection to {where} became free in time ({exc}); the "
                    "server is unreachable or every pooled connection is busy")
    state = exc.sqlstate or ""
    found = BY_SQLSTATE.get(state) or BY_CLASS.get(state[:2])
    if found is not None:
        error, message = found
        return error(message.format(detail=_primary(exc), exc=exc, where=where))
    if isinstance(exc, psycopg.OperationalError):
        return BackendUnavailable(f"lost the connection to PostgreSQL at {where}: "
                                  f"{str(exc).strip()}")
    return BackendUnavailable(f"PostgreSQL at {where} failed ({state or 'client'}): "
                              f"{str(exc).strip()}")


@contextmanager
def translate_errors(where: str) -> Iterator[None]:
    """Turn psycopg errors into loomdb errors at the backend boundary."""
    try:
        yield
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"text must be valid Unicode (no lone surrogates): {exc.reason}") \
            from exc
    except psycopg.Error as exc:
        raise translate(exc, where) from exc


@contextmanager
def conflict_on_duplicate(what: str) -> Iterator[None]:
    """Raise ``Conflict`` naming ``what`` (``"a node"``) when a write inside repeats a unique
    key; any other error passes on untouched."""
    try:
        yield
    except psycopg.IntegrityError as exc:
        if exc.sqlstate == UNIQUE_VIOLATION:
            raise Conflict(f"{what} in the batch already exists; use upsert to replace "
                           "it") from exc
        raise


def retryable(cause: BaseException | None, committing: bool) -> bool:
    """Whether a transaction that failed with ``cause`` surely did not commit, so running it
    again is safe: the server rolled it back (serialization failure, deadlock), or the
    connection died before COMMIT was sent. A connection lost during COMMIT leaves the
    outcome unknown: no retry."""
    if not isinstance(cause, psycopg.Error):
        return False
    state = cause.sqlstate or ""
    if state in ROLLED_BACK:
        return True
    if isinstance(cause, psycopg.OperationalError) and not committing:
        return state in ("", *CONNECTION_LOST) or state.startswith("08")
    return False
