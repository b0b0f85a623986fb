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
from collections.abc import Iterator
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
Translation = tuple[type[LoomError], str]  # the error, and its message ({exc}: SQLite's words)
_CONFLICT: Final[Translation] = (Conflict, "write conflicts with existing data: {exc}")
_CANNOT_STORE: Final[Translation] = (InvalidInput, "SQLite cannot store this value: {exc}")
_BUSY: Final[Translation] = (Busy, "store is busy: {exc}; retry later")
_CORRUPT: Final[Translation] = (CorruptStore, "sqlite reports a damaged store: {exc}")
_FAILED: Final[Translation] = (BackendUnavailable, "sqlite error: {exc}")

BY_EXTENDED_CODE: Final[dict[int, Translation]] = {
    **dict.fromkeys(DUPLICATE_KEY, _CONFLICT),
    sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY: (NotFound, "a referenced row does not exist: {exc}"),
}
BY_PRIMARY_CODE: Final[dict[int, Translation]] = {
    sqlite3.SQLITE_CONSTRAINT: _CONFLICT,
    sqlite3.SQLITE_BUSY: _BUSY,
    sqlite3.SQLITE_LOCKED: _BUSY,
    sqlite3.SQLITE_READONLY: (InvalidInput,
                              "store is open read-only; open it for writing to write"),
    sqlite3.SQLITE_TOOBIG: _CANNOT_STORE,
    sqlite3.SQLITE_MISMATCH: _CANNOT_STORE,
    sqlite3.SQLITE_RANGE: _CANNOT_STORE,
    sqlite3.SQLITE_CORRUPT: _CORRUPT,
    sqlite3.SQLITE_NOTADB: _CORRUPT,
    sqlite3.SQLITE_FULL: (BackendUnavailable, "the disk holding the store is full: {exc}"),
}


def translate(exc: sqlite3.Error) -> LoomError:
    """The loomdb error for a sqlite3 error, chosen by its result code."""
    code: int | None = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # raised by the sqlite3 module, not by SQLite: closed, misused
        return BackendUnavailable(f"store is closed or misused: {exc}")
    error, message = BY_EXTENDED_CODE.get(code) or BY_PRIMARY_CODE.get(code & 0xFF, _FAILED)
    return error(message.format(exc=exc))


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
