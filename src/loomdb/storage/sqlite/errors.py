"""sqlite3 errors as loomdb errors: the one place that reads SQLite's result codes.

SQLite names each failure with a result code (``exc.sqlite_errorcode``, an extended code such
as ``SQLITE_CONSTRAINT_UNIQUE`` whose low byte is the primary ``SQLITE_CONSTRAINT``); the
translation reads those codes, never the wording of a message. Errors the ``sqlite3`` module
raises itself (a closed connection, a wrong binding) carry no code and are told apart by class.

=================================================  ======================
SQLite result code                                  loomdb error
=================================================  ======================
CONSTRAINT_UNIQUE, _PRIMARYKEY, _ROWID              Conflict (duplicate)
CONSTRAINT_FOREIGNKEY                               NotFound
any other CONSTRAINT                                Conflict
BUSY, LOCKED                                        Busy
READONLY                                            InvalidInput
TOOBIG, MISMATCH, RANGE                             InvalidInput
CORRUPT, NOTADB                                     CorruptStore
FULL                                                BackendUnavailable (disk full)
anything else, or no code                           BackendUnavailable
=================================================  ======================
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

from ...errors import (
    BackendUnavailable,
    Busy,
    Conflict,
    CorruptStore,
    InvalidInput,
    LoomError,
    NotFound,
)

__all__ = ["conflict_on_duplicate", "translate", "translate_errors"]

DUPLICATE_KEY: Final = frozenset({
    sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY,
    sqlite3.SQLITE_CONSTRAINT_ROWID,
})
Translation = Callable[[sqlite3.Error], LoomError]


def _conflict(exc: sqlite3.Error) -> LoomError:
    return Conflict(f"write conflicts with existing data: {exc}")


def _missing_reference(exc: sqlite3.Error) -> LoomError:
    return NotFound(f"a referenced row does not exist: {exc}")


def _busy(exc: sqlite3.Error) -> LoomError:
    return Busy(f"store is busy: {exc}; retry later")


def _read_only(exc: sqlite3.Error) -> LoomError:
    return InvalidInput("store is open read-only; open it for writing to write")


def _cannot_store(exc: sqlite3.Error) -> LoomError:
    return InvalidInput(f"SQLite cannot store this value: {exc}")


def _corrupt(exc: sqlite3.Error) -> LoomError:
    return CorruptStore(f"sqlite reports a damaged store: {exc}")


def _disk_full(exc: sqlite3.Error) -> LoomError:
    return BackendUnavailable(f"the disk holding the store is full: {exc}")


def _failed(exc: sqlite3.Error) -> LoomError:
    return BackendUnavailable(f"sqlite error: {exc}")


BY_EXTENDED_CODE: Final[dict[int, Translation]] = {
    **dict.fromkeys(DUPLICATE_KEY, _conflict),
    sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY: _missing_reference,
}
BY_PRIMARY_CODE: Final[dict[int, Translation]] = {
    sqlite3.SQLITE_CONSTRAINT: _conflict,
    sqlite3.SQLITE_BUSY: _busy,
    sqlite3.SQLITE_LOCKED: _busy,
    sqlite3.SQLITE_READONLY: _read_only,
    sqlite3.SQLITE_TOOBIG: _cannot_store,
    sqlite3.SQLITE_MISMATCH: _cannot_store,
    sqlite3.SQLITE_RANGE: _cannot_store,
    sqlite3.SQLITE_CORRUPT: _corrupt,
    sqlite3.SQLITE_NOTADB: _corrupt,
    sqlite3.SQLITE_FULL: _disk_full,
}


def translate(exc: sqlite3.Error) -> LoomError:
    """The loomdb error for a sqlite3 error, chosen by its result code."""
    code: int | None = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # raised by the sqlite3 module, not by SQLite: closed, misused
        return BackendUnavailable(f"store is closed or misused: {exc}")
    by_code = BY_EXTENDED_CODE.get(code) or BY_PRIMARY_CODE.get(code & 0xFF, _failed)
    return by_code(exc)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn sqlite3 errors into loomdb errors at the backend boundary."""
    try:
        yield
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"text must be valid Unicode (no lone surrogates): {exc.reason} "
                           f"at position {exc.start}") from exc
    except sqlite3.Error as exc:
        raise translate(exc) from exc


@contextmanager
def conflict_on_duplicate(what: str) -> Iterator[None]:
    """Raise ``Conflict`` naming ``what`` (``"a node"``) when a write inside repeats a unique
    key; any other error passes on untouched."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if getattr(exc, "sqlite_errorcode", None) in DUPLICATE_KEY:
            raise Conflict(f"{what} in the batch already exists ({exc}); "
                           "use upsert to replace it") from exc
        raise
