"""Whole-store reading and upkeep on PostgreSQL: tenants, keyset scans, tool metadata and
space removal (the Backend methods migrations and other tools use)."""

from __future__ import annotations

from psycopg import sql

from ...errors import NotFound
from ...model import Edge, Node
from .connection import ALL_TENANTS, Conn
from .core import Core
from .rows import EDGE_COLUMNS, EDGE_FROM, NODE_COLUMNS, decode_edge, decode_node
from .vectors import _index_name

__all__ = ["META_PREFIX", "PostgresBulk"]

META_PREFIX = "tool:"  # tools' meta keys, apart from the backend's own (log_floor, store_id)
# the distinct tenants by hopping through the (tenant, id) index: one probe per tenant
# instead of a scan of every node
TENANTS = (
    "WITH RECURSIVE t(tenant) AS (SELECT min(tenant) FROM nodes UNION ALL "
    "SELECT (SELECT min(n.tenant) FROM nodes n WHERE n.tenant > t.tenant) FROM t "
    "WHERE t.tenant IS NOT NULL) SELECT tenant FROM t WHERE tenant IS NOT NULL"
)


class PostgresBulk(Core):
    """Mixed into ``PostgresBackend``; implements the whole-store part of the protocol."""

    def tenants(self) -> list[str]:
        return sorted(row[0] for row in self._db.query(TENANTS, tenant=ALL_TENANTS))

    def scan_nodes(self, tenant: str, after: int, limit: int) -> list[tuple[int, Node]]:
        rows = self._db.query(
            f"SELECT n.nid, {NODE_COLUMNS} FROM nodes n WHERE n.tenant = %s AND n.nid > %s "
            "ORDER BY n.nid LIMIT %s", (tenant, after, limit), tenant=tenant)
        return [(row[0], decode_node(row[1:])) for row in rows]

    def scan_edges(self, tenant: str, after: int, limit: int) -> list[tuple[int, Edge]]:
        rows = self._db.query(
            f"SELECT e.eid, {EDGE_COLUMNS} {EDGE_FROM} WHERE e.tenant = %s AND e.eid > %s "
            "ORDER BY e.eid LIMIT %s", (tenant, after, limit), tenant=tenant)
        return [(row[0], decode_edge(row[1:])) for row in rows]

    def get_meta(self, key: str) -> str | None:
        value = self._db.scalar("SELECT value FROM meta WHERE key = %s", (META_PREFIX + key,),
                                tenant=ALL_TENANTS)
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str | None) -> None:
        def write(conn: Conn) -> None:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = %s", (META_PREFIX + key,))
            else:
                conn.execute("INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
                             "SET value = excluded.value", (META_PREFIX + key, value))

        self._db.run(write, ALL_TENANTS)

    def delete_space(self, name: str) -> int:
        def write(conn: Conn) -> int:
            if conn.execute("SELECT 1 FROM spaces WHERE name = %s FOR UPDATE",
                            (name,)).fetchone() is None:
                raise NotFound(f"no vector space {name!r}")
            deleted = conn.execute("DELETE FROM vectors WHERE space = %s", (name,)).rowcount
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(_index_name(name)))
            conn.execute("DELETE FROM index_stamps WHERE space = %s", (name,))
            conn.execute("DELETE FROM spaces WHERE name = %s", (name,))
            return int(deleted)

        deleted = self._db.run(write, ALL_TENANTS)
        self._spaces.pop(name, None)
        return deleted
