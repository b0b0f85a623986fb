"""PostgresBackend: the Backend protocol on PostgreSQL + pgvector (design: package docstring).

This module holds the lifecycle, nodes, edges, full text and introspection; vectors and the
change log, the job queue and the graph traversals are mixins beside it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from ...config import StoreSettings
from ...errors import Conflict, NotFound
from ...filters import FilterNode
from ...model import Direction, Edge, Node
from ..base import Backend, OnConflict, StoreStats, check_updatable
from .adapters import register_vector_type
from .bulk import PostgresBulk
from .connection import ALL_TENANTS, Conn, Connection
from .core import no_nul
from .errors import conflict_on_duplicate
from .graph import PostgresGraph
from .jobs import PostgresJobQueue
from .rows import (
    EDGE_COLUMNS,
    EDGE_FROM,
    NODE_COLUMNS,
    check_text,
    decode_edge,
    decode_node,
    encode_props,
    number,
)
from .server import ServerInfo, prepare
from .vectors import PostgresVectors

__all__ = ["PostgresBackend"]

FLOAT_FIELDS = frozenset({"confidence", "strength", "last_accessed", "created"})
EDGE_SELECT = f"SELECT {EDGE_COLUMNS} {EDGE_FROM}"
NODE_INSERT = (
    "INSERT INTO nodes (tenant, id, kind, text, props, source, category, confidence, strength, "
    "access_count, created, updated, last_accessed) SELECT %s, b.id, b.kind, b.text, b.props, "
    "b.source, b.category, b.confidence, b.strength, b.access_count, b.created, b.updated, "
    "b.last_accessed FROM unnest(%s::text[], %s::text[], %s::text[], %s::json[], %s::text[], "
    "%s::text[], %s::float8[], %s::float8[], %s::int8[], %s::float8[], %s::float8[], "
    "%s::float8[]) WITH ORDINALITY AS b(id, kind, text, props, source, category, confidence, "
    "strength, access_count, created, updated, last_accessed, ord) ORDER BY b.ord"
)
NODE_UPSERT = (
    " ON CONFLICT (tenant, id) DO UPDATE SET kind = excluded.kind, text = excluded.text, "
    "props = excluded.props, source = excluded.source, category = excluded.category, "
    "confidence = excluded.confidence, strength = excluded.strength, "
    "access_count = excluded.access_count, updated = excluded.updated, "
    "last_accessed = excluded.last_accessed"
)
EDGE_INSERT = (
    "INSERT INTO edges (tenant, src, dst, type, weight, confidence, props, created, last_used) "
    "SELECT %s, b.src, b.dst, b.type, b.weight, b.confidence, b.props, b.created, b.last_used "
    "FROM unnest(%s::int8[], %s::int8[], %s::text[], %s::float8[], %s::float8[], %s::json[], "
    "%s::float8[], %s::float8[]) WITH ORDINALITY AS b(src, dst, type, weight, confidence, "
    "props, created, last_used, ord) ORDER BY b.ord"
)
EDGE_UPSERT = (
    " ON CONFLICT (src, type, dst) DO UPDATE SET weight = excluded.weight, "
    "confidence = excluded.confidence, props = excluded.props, last_used = excluded.last_used"
)


def _tsquery(text: str) -> str | None:
    """Plain text as a tsquery: each word quoted as a lexeme (so none is syntax), OR-ed.
    ``\\w+`` words hold no quote or backslash, so the quoting is safe."""
    words = re.findall(r"\w+", text)[:64]
    return " | ".join(f"'{w}'" for w in words) if words else None


def _last_wins(items: Sequence[Any], key: Any, on_conflict: OnConflict, what: str) -> list[Any]:
    """A batch as PostgreSQL can write it in one statement, which may not touch a row twice:
    what writing the items one after the other would leave (the first of a repeated key for
    ``ignore``, the last for ``replace``; ``error`` refuses a repeat as SQLite does)."""
    kept: dict[Any, Any] = {}
    for item in items:
        k = key(item)
        if k in kept and on_conflict == "error":
            raise Conflict(f"the batch holds {what} {k!r} twice; use upsert to replace it")
        if k not in kept or on_conflict == "replace":
            kept[k] = item
    return list(kept.values())


class PostgresBackend(PostgresBulk, PostgresVectors, PostgresGraph, PostgresJobQueue,
                      Backend):
    """A store in one PostgreSQL database, e.g. ``postgresql://user@host:5432/db``.

    ``settings.durability`` sets ``synchronous_commit`` (full: on, normal: local, off: off);
    ``busy_timeout`` the lock and pool timeouts; ``read_only`` opens read-only transactions.
    """

    def __init__(self, url: str, settings: StoreSettings | None = None, *,
                 pool_size: int = 8) -> None:
        settings = settings or StoreSettings()
        self.settings = settings
        self.url = url
        self._spaces = {}
        self.info: ServerInfo = prepare(url, settings.busy_timeout, read_only=settings.read_only)
        vector_type = self.info.vector_type

        def configure(conn: Conn) -> None:
            register_vector_type(conn, vector_type)

        self._db = Connection(url, durability=settings.durability, read_only=settings.read_only,
                              busy_timeout=settings.busy_timeout, pool_size=pool_size,
                              configure=configure)

    @property
    def rls_enforced(self) -> bool:
        """Whether PostgreSQL itself holds the connecting role to one tenant per transaction
        (false for superusers and BYPASSRLS roles, which skip row-level security)."""
        return self.info.rls_enforced

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def transaction(self) -> AbstractContextManager[None]:
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._db.transaction():
            yield

    def in_transaction(self) -> bool:
        return self._db.in_transaction()

    def seq(self) -> int:
        return int(self._db.scalar(
            "SELECT greatest((SELECT coalesce(max(seq), 0) FROM changes), (SELECT "
            "coalesce(max(value::bigint), 0) FROM meta WHERE key = 'log_floor'))",
            tenant=ALL_TENANTS))

    # -- nodes -----------------------------------------------------------------------------

    def put_nodes(self, tenant: str, nodes: Sequence[Node], on_conflict: OnConflict) -> None:
        if not nodes:
            return
        batch = _last_wins(nodes, lambda n: n.id, on_conflict, "node")
        now = time.time()
        columns: list[list[Any]] = [[] for _ in range(12)]
        for n in batch:
            check_text(f"node {n.id!r}", [("id", n.id), ("kind", n.kind), ("text", n.text),
                                          ("source", n.source), ("category", n.category)])
            values = (n.id, n.kind, n.text, encode_props(n.props), n.source, n.category,
                      number(n.confidence, "confidence"), number(n.strength, "strength"),
                      n.access_count, _or_now(number(n.created, "created"), now),
                      _or_now(number(n.updated, "updated"), now),
                      number(n.last_accessed, "last_accessed"))
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        statement = NODE_INSERT + {"replace": NODE_UPSERT, "ignore": " ON CONFLICT DO NOTHING",
                                   "error": ""}[on_conflict]

        def write(conn: Conn) -> None:
            with conflict_on_duplicate("a node"):
                conn.execute(statement, (tenant, *columns))

        self._db.run(write, tenant)

    def get_nodes(self, tenant: str, ids: Sequence[str]) -> dict[str, Node]:
        if not ids:
            return {}
        rows = self._db.query(
            f"SELECT {NODE_COLUMNS} FROM nodes n WHERE n.tenant = %s AND n.id = ANY(%s::text[])",
            (tenant, no_nul(ids)), tenant=tenant)
        return {row[0]: decode_node(row) for row in rows}

    def update_node(self, tenant: str, node_id: str, changes: Mapping[str, object]) -> Node:
        check_updatable(changes)
        check_text(f"node {node_id!r}", list(changes.items()))
        values = {k: encode_props(v) if k == "props" else
                  number(v, k) if k in FLOAT_FIELDS else v for k, v in changes.items()}
        values["updated"] = time.time()
        assignments = ", ".join(f"{column} = %s" for column in values)

        def write(conn: Conn) -> Node:
            row = conn.execute(
                f"UPDATE nodes n SET {assignments} WHERE n.tenant = %s AND n.id = %s "
                f"RETURNING {NODE_COLUMNS}", (*values.values(), tenant, node_id)).fetchone()
            if row is None:
                raise NotFound(f"node {node_id!r} does not exist")
            return decode_node(row)

        return self._db.run(write, tenant)

    def delete_nodes(self, tenant: str, ids: Sequence[str]) -> int:
        def write(conn: Conn) -> int:
            return conn.execute("DELETE FROM nodes WHERE tenant = %s AND id = ANY(%s::text[])",
                                (tenant, no_nul(ids))).rowcount

        return self._db.run(write, tenant) if ids else 0

    def list_nodes(
        self, tenant: str, where: FilterNode | None, limit: int, offset: int
    ) -> list[Node]:
        clause, params = self._where(where)
        rows = self._db.query(
            f"SELECT {NODE_COLUMNS} FROM nodes n WHERE n.tenant = %s{clause} "
            "ORDER BY n.nid LIMIT %s OFFSET %s", (tenant, *params, limit, offset), tenant=tenant)
        return [decode_node(row) for row in rows]

    def count_nodes(self, tenant: str, where: FilterNode | None) -> int:
        clause, params = self._where(where)
        return int(self._db.scalar(f"SELECT count(*) FROM nodes n WHERE n.tenant = %s{clause}",
                                   (tenant, *params), tenant=tenant))

    def filter_ids(self, tenant: str, ids: Sequence[str], where: FilterNode | None) -> list[str]:
        if not ids:
            return []
        clause, params = self._where(where)
        rows = self._db.query(
            f"SELECT n.id FROM nodes n WHERE n.tenant = %s AND n.id = ANY(%s::text[]){clause}",
            (tenant, no_nul(ids), *params), tenant=tenant)
        kept = {row[0] for row in rows}
        return [i for i in ids if i in kept]

    def store_id(self) -> str | None:
        """A random id written to ``meta`` on first use (``None`` read-only, until then)."""
        def read_or_make(conn: Conn) -> str | None:
            if not self.settings.read_only:
                conn.execute("INSERT INTO meta VALUES ('store_id', %s) ON CONFLICT DO NOTHING",
                             (f"loomdb-{uuid.uuid4().hex}",))
            row = conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
            return None if row is None else str(row[0])

        return self._db.run(read_or_make, ALL_TENANTS)

    def sample_nodes(self, tenant: str, n: int) -> list[Node]:
        """A uniform random sample of the tenant's nodes."""
        rows = self._db.query(
            f"SELECT {NODE_COLUMNS} FROM nodes n WHERE n.nid IN (SELECT nid FROM nodes "
            "WHERE tenant = %s ORDER BY random() LIMIT %s)", (tenant, n), tenant=tenant)
        return [decode_node(row) for row in rows]

    # -- edges -----------------------------------------------------------------------------

    def put_edges(self, tenant: str, edges: Sequence[Edge], on_conflict: OnConflict) -> None:
        if not edges:
            return
        batch = _last_wins(edges, lambda e: (e.src, e.dst, e.type), on_conflict, "edge")
        for e in batch:
            check_text(f"edge {e.src!r} -> {e.dst!r}", [("type", e.type)])
        now = time.time()
        statement = EDGE_INSERT + {"replace": EDGE_UPSERT, "ignore": " ON CONFLICT DO NOTHING",
                                   "error": ""}[on_conflict]

        def write(conn: Conn) -> None:
            nids = self._nids(conn, tenant, [e.src for e in batch] + [e.dst for e in batch])
            columns = list(zip(*(
                (nids[e.src], nids[e.dst], e.type, number(e.weight, "weight"),
                 number(e.confidence, "confidence"), encode_props(e.props),
                 _or_now(number(e.created, "created"), now), number(e.last_used, "last_used"))
                for e in batch), strict=True))
            with conflict_on_duplicate("an edge"):
                conn.execute(statement, (tenant, *map(list, columns)))

        self._db.run(write, tenant)

    def get_edges(
        self,
        tenant: str,
        src: str | None = None,
        dst: str | None = None,
        types: Sequence[str] | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[Edge]:
        if any("\x00" in end for end in (src, dst) if end is not None):
            return []  # ids never hold NUL
        sql = f"{EDGE_SELECT} WHERE e.tenant = %s"
        params: list[Any] = [tenant]
        for column, value in (("src", src), ("dst", dst)):
            if value is not None:
                sql += (f" AND e.{column} = (SELECT nid FROM nodes WHERE tenant = %s "
                        "AND id = %s)")
                params += [tenant, value]
        if types is not None:
            sql += " AND e.type = ANY(%s::text[])"
            params.append(no_nul(types))
        rows = self._db.query(sql + " ORDER BY e.eid LIMIT %s OFFSET %s",
                              (*params, limit, offset), tenant=tenant)
        return [decode_edge(row) for row in rows]

    def delete_edges(self, tenant: str, keys: Sequence[tuple[str, str, str]]) -> int:
        keys = [k for k in keys if not any("\x00" in part for part in k)]  # matches nothing
        if not keys:
            return 0
        src, dst, types = ([k[i] for k in keys] for i in range(3))

        def write(conn: Conn) -> int:
            return conn.execute(
                "DELETE FROM edges e USING unnest(%s::text[], %s::text[], %s::text[]) "
                "AS k(src, dst, type), nodes s, nodes d WHERE s.tenant = %s AND s.id = k.src "
                "AND d.tenant = %s AND d.id = k.dst AND e.src = s.nid AND e.dst = d.nid "
                "AND e.type = k.type AND e.tenant = %s",
                (src, dst, types, tenant, tenant, tenant)).rowcount

        return self._db.run(write, tenant)

    def adjacent(
        self,
        tenant: str,
        ids: Sequence[str],
        types: Sequence[str] | None,
        direction: Direction,
        limit: int,
    ) -> list[Edge]:
        type_clause = " AND e.type = ANY(%s::text[])" if types is not None else ""
        parts, params = [], []
        sides = {"out": ("src",), "in": ("dst",), "both": ("src", "dst")}[direction]
        for side in sides:
            parts.append(
                f"SELECT e.eid, {EDGE_COLUMNS} {EDGE_FROM} WHERE e.{side} IN (SELECT nid FROM "
                f"nodes WHERE tenant = %s AND id = ANY(%s::text[])){type_clause}")
            params += [tenant, no_nul(ids)]
            if types is not None:
                params.append(no_nul(types))
        sql = " UNION ALL ".join(parts)
        rows = self._db.query(f"SELECT * FROM ({sql}) a ORDER BY 5 DESC, 1 LIMIT %s",
                              (*params, limit), tenant=tenant)
        return [decode_edge(row[1:]) for row in rows]

    # -- full text -------------------------------------------------------------------------

    def text_search(
        self, tenant: str, query: str, k: int, where: FilterNode | None
    ) -> list[tuple[Node, float]]:
        match = _tsquery(query.replace("\x00", " "))
        if match is None:
            return []
        clause, params = self._where(where)
        rows = self._db.query(
            f"SELECT {NODE_COLUMNS}, ts_rank_cd(n.tsv, q) AS rank FROM nodes n, "
            f"to_tsquery('simple', %s) AS q WHERE n.tsv @@ q AND n.tenant = %s{clause} "
            "ORDER BY rank DESC, n.nid LIMIT %s", (match, tenant, *params, k), tenant=tenant)
        return [(decode_node(row), float(row[-1])) for row in rows]

    # -- introspection ---------------------------------------------------------------------

    def stats(self, tenant: str) -> StoreStats:
        def grouped(sql: str) -> dict[str, int]:
            return {key: int(count) for key, count in
                    self._db.query(sql, (tenant,), tenant=tenant)}

        return {
            "tenant": tenant,
            "nodes": grouped("SELECT kind, count(*) FROM nodes WHERE tenant = %s GROUP BY kind"),
            "edges": grouped("SELECT type, count(*) FROM edges WHERE tenant = %s GROUP BY type"),
            "vectors": grouped(
                "SELECT space, count(*) FROM vectors WHERE tenant = %s GROUP BY space"),
            "seq": self.seq(),
            "log_entries": int(self._db.scalar("SELECT count(*) FROM changes",
                                               tenant=ALL_TENANTS)),
        }

    def check_integrity(self) -> list[str]:
        checks = {
            "edges whose tenant differs from an endpoint's":
                "SELECT count(*) FROM edges e JOIN nodes s ON s.nid = e.src JOIN nodes d "
                "ON d.nid = e.dst WHERE e.tenant <> s.tenant OR e.tenant <> d.tenant",
            "vectors whose tenant differs from their node's":
                "SELECT count(*) FROM vectors v JOIN nodes n ON n.nid = v.nid "
                "WHERE v.tenant <> n.tenant",
            "vectors whose dimension differs from their space's":
                "SELECT count(*) FROM vectors v JOIN spaces s ON s.name = v.space "
                "WHERE vector_dims(v.vec) <> s.dim",
        }
        problems = []
        for what, sql in checks.items():
            count = int(self._db.scalar(sql, tenant=ALL_TENANTS))
            if count:
                problems.append(f"{count} {what}")
        return problems


def _or_now(value: float | None, now: float) -> float:
    return now if value is None else value
