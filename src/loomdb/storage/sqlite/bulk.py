"""Whole-store reading and upkeep on SQLite: tenants, keyset scans, tool metadata and space
removal (the Backend methods migrations and other tools use)."""

from __future__ import annotations

from typing import Any

from ...errors import NotFound
from ...model import Edge, Node, VectorSpace
from .connection import Connection
from .rows import EDGE_COLUMNS, EDGE_FROM, NODE_COLUMNS, decode_edge, decode_node

__all__ = ["META_PREFIX", "SqliteBulk"]

META_PREFIX = "tool:"  # tools' meta keys, apart from the backend's own (log_floor, store_id)


class SqliteBulk:
    """Mixed into ``SqliteBackend``; implements the whole-store part of the protocol."""

    _db: Connection
    _spaces: dict[str, VectorSpace]

    def tenants(self) -> list[str]:
        return [row[0] for row in self._db.query("SELECT DISTINCT tenant FROM nodes ORDER BY 1")]

    def scan_nodes(self, tenant: str, after: int, limit: int) -> list[tuple[int, Node]]:
        rows = self._db.query(
            f"SELECT n.nid, {NODE_COLUMNS} FROM nodes n WHERE n.tenant = ? AND n.nid > ? "
            "ORDER BY n.nid LIMIT ?", (tenant, after, limit))
        return [(row[0], decode_node(row[1:])) for row in rows]

    def scan_edges(self, tenant: str, after: int, limit: int) -> list[tuple[int, Edge]]:
        rows = self._db.query(
            f"SELECT e.eid, {EDGE_COLUMNS} {EDGE_FROM} WHERE e.tenant = ? AND e.eid > ? "
            "ORDER BY e.eid LIMIT ?", (tenant, after, limit))
        return [(row[0], decode_edge(row[1:])) for row in rows]

    def get_meta(self, key: str) -> str | None:
        value: Any = self._db.scalar("SELECT value FROM meta WHERE key = ?",
                                     (META_PREFIX + key,))
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str | None) -> None:
        with self._db.transaction() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (META_PREFIX + key,))
            else:
                conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                             "DO UPDATE SET value = excluded.value", (META_PREFIX + key, value))

    def delete_space(self, name: str) -> int:
        with self._db.transaction() as conn:
            if conn.execute("SELECT 1 FROM spaces WHERE name = ?", (name,)).fetchone() is None:
                raise NotFound(f"no vector space {name!r}")
            deleted = conn.execute("DELETE FROM vectors WHERE space = ?", (name,)).rowcount
            # without its stamps the log may be purged past a stale index file, which is then
            # rebuilt rather than trusted if a space of that name comes back
            conn.execute("DELETE FROM index_stamps WHERE space = ?", (name,))
            conn.execute("DELETE FROM spaces WHERE name = ?", (name,))
        self._spaces.pop(name, None)
        return int(deleted)
