"""What a PostgreSQL server offers loomdb, found out once when a backend opens.

``prepare`` connects directly (not through the pool, so an unreachable server fails at once
with the reason instead of a pool timeout), checks the server and pgvector versions, creates
the ``vector`` extension when the role may, migrates the schema and reports whether
row-level security binds the connecting role.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types import TypeInfo

from ...errors import BackendUnavailable, CorruptStore, NotFound
from .adapters import fetch_vector_type
from .connection import describe
from .errors import translate_errors
from .schema import MIGRATIONS, migrate, schema_version

__all__ = ["MIN_PGVECTOR", "MIN_SERVER", "ServerInfo", "connect", "prepare"]

log = logging.getLogger(__name__)
MIN_SERVER = 140000  # PostgreSQL 14: statement triggers over transition tables, FORCE RLS
MIN_PGVECTOR = (0, 8, 0)  # iterative index scans (hnsw.iterative_scan)


@dataclass(frozen=True)
class ServerInfo:
    """Versions, the ``vector`` type's OIDs, and whether row-level security applies to the
    role loomdb connects as (it does not for superusers and BYPASSRLS roles)."""

    server_version: int
    pgvector: tuple[int, ...]
    role: str
    rls_enforced: bool
    vector_type: TypeInfo


def connect(url: str, timeout: float) -> psycopg.Connection[Any]:
    """A direct autocommit connection; ``BackendUnavailable`` naming host:port if refused."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=max(1, round(timeout)))
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "no reason given"
        raise BackendUnavailable(f"cannot connect to PostgreSQL at {describe(url)}: "
                                 f"{reason}") from exc
    except psycopg.Error as exc:
        raise BackendUnavailable(f"cannot connect to PostgreSQL at {describe(url)}: "
                                 f"{exc}") from exc


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def _ensure_pgvector(conn: psycopg.Connection[Any], where: str) -> tuple[int, ...]:
    """The installed pgvector version, creating the extension if the role may."""
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    if row is None:
        available = conn.execute(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
        ).fetchone()
        if available is None:
            raise BackendUnavailable(
                f"pgvector is not installed on the PostgreSQL server at {where}: install "
                "pgvector 0.8 or newer (https://github.com/pgvector/pgvector), then run "
                "CREATE EXTENSION vector; in the database")
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.errors.InsufficientPrivilege as exc:
            raise BackendUnavailable(
                f"the vector extension is not enabled in {where} and this role may not "
                "enable it: run CREATE EXTENSION vector; in that database as a superuser "
                "(or the database owner)") from exc
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'"
                           ).fetchone()
        assert row is not None
    version = _version(str(row[0]))
    if version < MIN_PGVECTOR:
        raise BackendUnavailable(
            f"pgvector {row[0]} in {where} is too old (loomdb needs 0.8+ for iterative index "
            "scans): ALTER EXTENSION vector UPDATE; after installing a newer pgvector")
    return version


def _check_schema(conn: psycopg.Connection[Any], where: str) -> None:
    """A read-only open migrates nothing: the store must exist, at a version we know."""
    version = schema_version(conn)
    if version == 0:
        raise NotFound(f"no loomdb store in {where}; open it once for writing to create one")
    if version > len(MIGRATIONS):
        raise CorruptStore(f"database schema v{version} is newer than this loomdb "
                           f"(v{len(MIGRATIONS)}); upgrade loomdb")


def _migrate(conn: psycopg.Connection[Any], where: str) -> None:
    try:
        migrate(conn)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise BackendUnavailable(
            f"this role may not create or change loomdb's tables in {where} "
            f"({exc.diag.message_primary}): open the store once as the owner of the database "
            "or schema, or GRANT CREATE ON SCHEMA to this role") from exc


def prepare(url: str, timeout: float, *, read_only: bool) -> ServerInfo:
    """Check the server, enable pgvector, migrate the schema (unless ``read_only``)."""
    where = describe(url)
    with connect(url, timeout) as conn, translate_errors(where):
        server_version = int(conn.info.server_version)
        if server_version < MIN_SERVER:
            raise BackendUnavailable(f"PostgreSQL at {where} is version {server_version}; "
                                     "loomdb needs 14 or newer")
        pgvector = _ensure_pgvector(conn, where)
        if read_only:
            _check_schema(conn, where)
        else:
            _migrate(conn, where)
        role, superuser, bypass = conn.execute(
            "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone() or ("?", True, True)
        vector_type = fetch_vector_type(conn)
    if superuser or bypass:
        log.warning("connected to %s as %s, a role that bypasses row-level security: tenant "
                    "isolation rests on loomdb's queries alone; connect as an ordinary role "
                    "to have PostgreSQL enforce it too", where, role)
    return ServerInfo(server_version, pgvector, str(role), not (superuser or bypass),
                      vector_type)
