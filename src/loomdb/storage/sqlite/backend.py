"""SqliteBackend: the Backend protocol on one SQLite file (WAL, FTS5), the embedded default."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ...config import StoreSettings
from ...errors import BackendUnavailable, Conflict, CorruptStore, InvalidInput, NotFound
from ...filters import FilterNode
from ...model import Direction, Edge, Node, VectorSpace
from ..base import Backend, Change, Labels, Matrix, OnConflict, StoreStats, check_updatable
from ..sql_filters import to_sql
from .bulk import SqliteBulk
from .connection import Connection
from .errors import conflict_on_duplicate, translate_errors
from .filters import SQLITE
from .fts import TermStats
from .jobs import SqliteJobQueue
from .lock import WriterLock
from .rows import (
    EDGE_COLUMNS,
    EDGE_FROM,
    EDGE_SELECT,
    NODE_COLUMNS,
    decode_edge,
    decode_node,
    encode_props,
)
from .schema import TEXT_TOTALS_VERSION, migrate
from .text import SqliteTextSearch

__all__ = ["SqliteBackend"]

DTYPES = {"float32": np.float32, "float16": np.float16, "float64": np.float64}
IN_IDS = "(SELECT value FROM json_each(?))"


class SqliteBackend(SqliteBulk, SqliteJobQueue, SqliteTextSearch, Backend):
    """A store in a directory (``loom.db``, ``LOCK``, ``index/``) or in memory (``:memory:``)."""

    def __init__(self, path: str | Path, settings: StoreSettings | None = None) -> None:
        settings = settings or StoreSettings()
        self.settings = settings
        self._spaces: dict[str, VectorSpace] = {}
        self.memory = str(path) == ":memory:"
        self.directory: Path | None = None
        self._lock: WriterLock | None = None
        if self.memory:
            target, uri = ":memory:", False
        else:
            self.directory = Path(path)
            target, uri = self._open_directory(self.directory, settings.read_only)
        try:
            self._db = Connection(target, uri=uri, durability=settings.durability,
                                  busy_timeout=settings.busy_timeout)
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        self._terms = TermStats(lambda sql, params: self._db.query(sql, params),
                                self.text_totals)
        if not settings.read_only:
            try:
                with translate_errors():
                    migrate(self._db.raw)
                if self._lock is not None:  # the lock proves no other process runs our jobs
                    self.release_dead_leases()
            except BaseException:
                self.close()
                raise
        # per-tenant text statistics came with schema v4 (a read-only store may predate it)
        self._per_tenant_text = \
            int(self._db.scalar("PRAGMA user_version")) >= TEXT_TOTALS_VERSION

    def _open_directory(self, directory: Path, read_only: bool) -> tuple[str, bool]:
        if read_only:
            if not (directory / "loom.db").exists():
                raise NotFound(f"no loomdb store at {directory}")
            return f"file:{directory / 'loom.db'}?mode=ro", True
        if directory.exists() and not directory.is_dir():
            raise InvalidInput(f"{directory} exists and is not a directory")
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendUnavailable(f"cannot create store directory {directory}: "
                                     f"{exc.strerror}") from exc
        self._lock = WriterLock(directory / "LOCK")
        return str(directory / "loom.db"), False

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def transaction(self) -> AbstractContextManager[None]:
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._db.transaction():
            yield

    def in_transaction(self) -> bool:
        return self._db.in_transaction()

    def seq(self) -> int:
        value = self._db.scalar("SELECT seq FROM sqlite_sequence WHERE name = 'changes'")
        return int(value or 0)

    # -- nodes -----------------------------------------------------------------------------

    def put_nodes(self, tenant: str, nodes: Sequence[Node], on_conflict: OnConflict) -> None:
        now = time.time()
        rows = [
            (tenant, n.id, n.kind, n.text, encode_props(n.props), n.source, n.category,
             n.confidence, n.strength, n.access_count, n.created if n.created is not None else now,
             n.updated if n.updated is not None else now, n.last_accessed)
            for n in nodes
        ]
        insert = (
            "INSERT INTO nodes (tenant, id, kind, text, props, source, category, confidence, "
            "strength, access_count, created, updated, last_accessed) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
        )
        if on_conflict == "replace":
            insert += (
                " ON CONFLICT (tenant, id) DO UPDATE SET kind = excluded.kind, "
                "text = excluded.text, props = excluded.props, source = excluded.source, "
                "category = excluded.category, confidence = excluded.confidence, "
                "strength = excluded.strength, access_count = excluded.access_count, "
                "updated = excluded.updated, last_accessed = excluded.last_accessed"
            )
        elif on_conflict == "ignore":
            insert += " ON CONFLICT (tenant, id) DO NOTHING"
        with self._db.transaction() as conn, conflict_on_duplicate("a node"):
            conn.executemany(insert, rows)

    def get_nodes(self, tenant: str, ids: Sequence[str]) -> dict[str, Node]:
        rows = self._db.query(
            f"SELECT {NODE_COLUMNS} FROM nodes n WHERE n.tenant = ? AND n.id IN {IN_IDS}",
            (tenant, json.dumps(list(ids))),
        )
        return {row[0]: decode_node(row) for row in rows}

    def update_node(self, tenant: str, node_id: str, changes: Mapping[str, object]) -> Node:
        check_updatable(changes)
        values = {k: encode_props(v) if k == "props" else v for k, v in changes.items()}
        values["updated"] = time.time()
        assignments = ", ".join(f"{column} = ?" for column in values)
        with self._db.transaction() as conn:
            cursor = conn.execute(
                f"UPDATE nodes SET {assignments} WHERE tenant = ? AND id = ?",
                (*values.values(), tenant, node_id),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"node {node_id!r} does not exist")
            row = conn.execute(
                f"SELECT {NODE_COLUMNS} FROM nodes n WHERE n.tenant = ? AND n.id = ?",
                (tenant, node_id),
            ).fetchone()
        return decode_node(row)

    def delete_nodes(self, tenant: str, ids: Sequence[str]) -> int:
        with self._db.transaction() as conn:
            cursor = conn.execute(
                f"DELETE FROM nodes WHERE tenant = ? AND id IN {IN_IDS}",
                (tenant, json.dumps(list(ids))),
            )
            return int(cursor.rowcount)

    def _where(self, where: FilterNode | None) -> tuple[str, list[Any]]:
        if where is None:
            return "", []
        sql, params = to_sql(where, SQLITE)
        return f" AND ({sql})", list(params)

    def list_nodes(
        self, tenant: str, where: FilterNode | None, limit: int, offset: int
    ) -> list[Node]:
        clause, params = self._where(where)
        rows = self._db.query(
            f"SELECT {NODE_COLUMNS} FROM nodes n WHERE n.tenant = ?{clause} "
            "ORDER BY n.nid LIMIT ? OFFSET ?",
            (tenant, *params, limit, offset),
        )
        return [decode_node(row) for row in rows]

    def count_nodes(self, tenant: str, where: FilterNode | None) -> int:
        clause, params = self._where(where)
        return int(self._db.scalar(
            f"SELECT count(*) FROM nodes n WHERE n.tenant = ?{clause}", (tenant, *params)
        ))

    def filter_ids(self, tenant: str, ids: Sequence[str], where: FilterNode | None) -> list[str]:
        clause, params = self._where(where)
        rows = self._db.query(  # CROSS JOIN: look the ids up, never scan by the filter
            f"SELECT n.id FROM json_each(?) j CROSS JOIN nodes n ON n.tenant = ? "
            f"AND n.id = j.value WHERE 1{clause}", (json.dumps(list(ids)), tenant, *params))
        kept = {row[0] for row in rows}
        return [i for i in ids if i in kept]

    def store_id(self) -> str | None:
        """A random id written to ``meta`` on first use; a read-only or memory store that has
        none yet answers ``None``."""
        found = self._db.scalar("SELECT value FROM meta WHERE key = 'store_id'")
        if found is None and not self.settings.read_only:
            with self._db.transaction() as conn:
                conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', ?)",
                             (f"loomdb-{uuid.uuid4().hex}",))
            found = self._db.scalar("SELECT value FROM meta WHERE key = 'store_id'")
        return None if found is None else str(found)

    def sample_nodes(self, tenant: str, n: int) -> list[Node]:
        """A uniform random sample: random row ids from the tenant's index, then the rows."""
        rows = self._db.query(
            f"SELECT {NODE_COLUMNS} FROM nodes n WHERE n.nid IN (SELECT nid FROM nodes "
            "WHERE tenant = ? ORDER BY random() LIMIT ?)", (tenant, n))
        return [decode_node(row) for row in rows]

    def _nids(self, conn: Any, tenant: str, ids: Sequence[str]) -> dict[str, int]:
        rows = conn.execute(
            f"SELECT id, nid FROM nodes WHERE tenant = ? AND id IN {IN_IDS}",
            (tenant, json.dumps(sorted(set(ids)))),
        ).fetchall()
        found = dict(rows)
        missing = sorted(set(ids) - set(found))
        if missing:
            shown = ", ".join(repr(m) for m in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise NotFound(f"no node {shown}{more} in tenant {tenant!r}")
        return found

    # -- edges -----------------------------------------------------------------------------

    def put_edges(self, tenant: str, edges: Sequence[Edge], on_conflict: OnConflict) -> None:
        now = time.time()
        insert = (
            "INSERT INTO edges (tenant, src, dst, type, weight, confidence, props, created, "
            "last_used) VALUES (?,?,?,?,?,?,?,?,?)"
        )
        if on_conflict == "replace":
            insert += (
                " ON CONFLICT (src, type, dst) DO UPDATE SET weight = excluded.weight, "
                "confidence = excluded.confidence, props = excluded.props, "
                "last_used = excluded.last_used"
            )
        elif on_conflict == "ignore":
            insert += " ON CONFLICT (src, type, dst) DO NOTHING"
        with self._db.transaction() as conn:
            nids = self._nids(conn, tenant, [e.src for e in edges] + [e.dst for e in edges])
            rows = [
                (tenant, nids[e.src], nids[e.dst], e.type, e.weight, e.confidence,
                 encode_props(e.props), e.created if e.created is not None else now, e.last_used)
                for e in edges
            ]
            with conflict_on_duplicate("an edge"):
                conn.executemany(insert, rows)

    def get_edges(
        self,
        tenant: str,
        src: str | None = None,
        dst: str | None = None,
        types: Sequence[str] | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[Edge]:
        sql, params = f"{EDGE_SELECT} WHERE e.tenant = ?", [tenant]
        for column, value in (("src", src), ("dst", dst)):
            if value is not None:
                sql += f" AND e.{column} = (SELECT nid FROM nodes WHERE tenant = ? AND id = ?)"
                params += [tenant, value]
        if types is not None:
            sql += f" AND e.type IN {IN_IDS}"
            params.append(json.dumps(list(types)))
        rows = self._db.query(sql + " ORDER BY e.eid LIMIT ? OFFSET ?", (*params, limit, offset))
        return [decode_edge(row) for row in rows]

    def delete_edges(self, tenant: str, keys: Sequence[tuple[str, str, str]]) -> int:
        sql = (
            "DELETE FROM edges WHERE tenant = ? AND type = ? "
            "AND src = (SELECT nid FROM nodes WHERE tenant = ? AND id = ?) "
            "AND dst = (SELECT nid FROM nodes WHERE tenant = ? AND id = ?)"
        )
        deleted = 0
        with self._db.transaction() as conn:
            for src, dst, type_ in keys:
                deleted += conn.execute(sql, (tenant, type_, tenant, src, tenant, dst)).rowcount
        return deleted

    def adjacent(
        self,
        tenant: str,
        ids: Sequence[str],
        types: Sequence[str] | None,
        direction: Direction,
        limit: int,
    ) -> list[Edge]:
        type_clause = f" AND e.type IN {IN_IDS}" if types is not None else ""
        parts, params = [], []
        sides = {"out": ("src",), "in": ("dst",), "both": ("src", "dst")}[direction]
        for side in sides:
            parts.append(
                f"SELECT e.eid, {EDGE_COLUMNS} {EDGE_FROM} WHERE e.{side} IN "
                f"(SELECT nid FROM nodes WHERE tenant = ? AND id IN {IN_IDS}){type_clause}"
            )
            params += [tenant, json.dumps(list(ids))]
            if types is not None:
                params.append(json.dumps(list(types)))
        sql = " UNION ALL ".join(parts)
        rows = self._db.query(
            f"SELECT * FROM ({sql}) ORDER BY 5 DESC, 1 LIMIT ?", (*params, limit)
        )
        return [decode_edge(row[1:]) for row in rows]

    # -- vector spaces and vectors ---------------------------------------------------------

    def create_space(self, space: VectorSpace) -> VectorSpace:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT name, dim, model, metric, quantization, storage FROM spaces "
                "WHERE name = ?", (space.name,),
            ).fetchone()
            if row is not None:
                existing = _space(row)
                if existing != space:
                    raise Conflict(f"vector space {space.name!r} exists as {existing}")
                return existing
            conn.execute(
                "INSERT INTO spaces VALUES (?,?,?,?,?,?)",
                (space.name, space.dim, space.model, space.metric, space.quantization,
                 space.storage),
            )
        return space

    def get_space(self, name: str) -> VectorSpace:
        # a space never changes once created (a different one is a Conflict), so cache it
        if (cached := self._spaces.get(name)) is not None:
            return cached
        rows = self._db.query(
            "SELECT name, dim, model, metric, quantization, storage FROM spaces WHERE name = ?",
            (name,),
        )
        if not rows:
            known = ", ".join(s.name for s in self.list_spaces()) or "none"
            raise NotFound(f"no vector space {name!r} (spaces: {known})")
        space = _space(rows[0])
        if not self.in_transaction():  # a rollback could still take it back
            self._spaces[name] = space
        return space

    def list_spaces(self) -> list[VectorSpace]:
        rows = self._db.query(
            "SELECT name, dim, model, metric, quantization, storage FROM spaces ORDER BY name"
        )
        return [_space(row) for row in rows]

    def put_vectors(self, tenant: str, space: str, ids: Sequence[str], vectors: Matrix) -> None:
        dtype = DTYPES[self.get_space(space).storage]
        latest = dict(zip(ids, vectors, strict=True))  # a repeated id: the last one wins
        with self._db.transaction() as conn:
            nids = self._nids(conn, tenant, list(latest))
            # delete + insert, never update: a replaced vector gets a new label
            conn.execute(
                f"DELETE FROM vectors WHERE space = ? AND nid IN {IN_IDS}",
                (space, json.dumps(list(nids.values()))),
            )
            conn.executemany(
                "INSERT INTO vectors (space, nid, tenant, vec) VALUES (?,?,?,?)",
                ((space, nids[i], tenant, v.astype(dtype).tobytes()) for i, v in latest.items()),
            )

    def _decode(self, space: str, blobs: Sequence[bytes], native: bool = False) -> Matrix:
        """Blobs as a matrix: float32 for computing, or the stored dtype when ``native``."""
        vector_space = self.get_space(space)
        dtype = DTYPES[vector_space.storage]
        if not blobs:
            return np.zeros((0, vector_space.dim), dtype=dtype if native else np.float32)
        joined = np.frombuffer(b"".join(blobs), dtype=dtype).reshape(len(blobs), -1)
        return joined if native else joined.astype(np.float32, copy=False)

    def get_vectors(self, tenant: str, space: str, ids: Sequence[str]) -> dict[str, Matrix]:
        rows = self._db.query(
            "SELECT n.id, v.vec FROM vectors v JOIN nodes n ON n.nid = v.nid "
            f"WHERE v.space = ? AND n.tenant = ? AND n.id IN {IN_IDS}",
            (space, tenant, json.dumps(list(ids))),
        )
        matrix = self._decode(space, [row[1] for row in rows], native=True)
        return {row[0]: matrix[i] for i, row in enumerate(rows)}

    def delete_vectors(self, tenant: str, space: str, ids: Sequence[str]) -> int:
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM vectors WHERE space = ? AND tenant = ? AND nid IN "
                f"(SELECT nid FROM nodes WHERE tenant = ? AND id IN {IN_IDS})",
                (space, tenant, tenant, json.dumps(list(ids))),
            )
            return int(cursor.rowcount)

    def vector_labels(self, tenant: str, space: str, where: FilterNode | None) -> Labels:
        if where is None:
            sql, params = ("SELECT vid FROM vectors WHERE space = ? AND tenant = ?",
                           [space, tenant])
        else:
            clause, params = self._where(where)
            sql = ("SELECT v.vid FROM nodes n JOIN vectors v ON v.nid = n.nid AND v.space = ? "
                   f"WHERE n.tenant = ?{clause}")
            params = [space, tenant, *params]
        rows = self._db.query(sql, params)
        return np.sort(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))

    def vectors_by_label(
        self, tenant: str, space: str, labels: Sequence[int]
    ) -> tuple[Labels, Matrix]:
        rows = self._db.query(
            # unary + keeps the planner on rowid lookups instead of scanning the whole space
            f"SELECT vid, vec FROM vectors WHERE vid IN {IN_IDS} AND +space = ? "
            "AND +tenant = ? ORDER BY vid", (json.dumps([int(x) for x in labels]), space, tenant),
        )
        found = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return found, self._decode(space, [r[1] for r in rows])

    def scan_vectors(
        self, tenant: str, space: str, batch: int = 10_000
    ) -> Iterator[tuple[Labels, Matrix]]:
        last = -1
        while True:
            rows = self._db.query(
                "SELECT vid, vec FROM vectors WHERE space = ? AND tenant = ? AND vid > ? "
                "ORDER BY vid LIMIT ?", (space, tenant, last, batch),
            )
            if not rows:
                return
            last = rows[-1][0]
            labels = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            yield labels, self._decode(space, [r[1] for r in rows])

    def nodes_by_label(self, tenant: str, space: str, labels: Sequence[int]) -> dict[int, Node]:
        rows = self._db.query(
            f"SELECT v.vid, {NODE_COLUMNS} FROM vectors v JOIN nodes n ON n.nid = v.nid "
            f"WHERE v.vid IN {IN_IDS} AND +v.space = ? AND +v.tenant = ?",
            (json.dumps([int(x) for x in labels]), space, tenant),
        )
        return {row[0]: decode_node(row[1:]) for row in rows}

    def vector_changes(self, tenant: str, space: str, after: int) -> list[Change]:
        floor = int(self._db.scalar("SELECT value FROM meta WHERE key = 'log_floor'") or 0)
        if after < floor:
            raise CorruptStore(f"change log purged to seq {floor}, index needs {after}")
        rows = self._db.query(
            "SELECT seq, op, ref FROM changes WHERE seq > ? AND entity = 'vector' "
            "AND space = ? AND tenant = ? ORDER BY seq", (after, space, tenant),
        )
        return [Change(seq, op, ref) for seq, op, ref in rows]

    def vector_tenants(self, space: str) -> list[str]:
        rows = self._db.query(
            "SELECT DISTINCT tenant FROM vectors WHERE space = ? ORDER BY tenant", (space,)
        )
        return [row[0] for row in rows]

    def record_index_stamp(self, tenant: str, space: str, seq: int) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO index_stamps VALUES (?,?,?) ON CONFLICT (space, tenant) "
                "DO UPDATE SET seq = excluded.seq", (space, tenant, seq),
            )

    def purge_log(self) -> int:
        with self._db.transaction() as conn:
            unstamped = conn.execute(
                "SELECT MIN(COALESCE(s.seq, 0)) FROM (SELECT DISTINCT space, tenant FROM "
                "vectors) v LEFT JOIN index_stamps s USING (space, tenant)"
            ).fetchone()[0]
            current = conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'changes'"
            ).fetchone()
            floor = int(unstamped if unstamped is not None else (current[0] if current else 0))
            deleted = conn.execute("DELETE FROM changes WHERE seq <= ?", (floor,)).rowcount
            conn.execute(
                "INSERT INTO meta VALUES ('log_floor', ?) ON CONFLICT (key) DO UPDATE SET "
                "value = MAX(CAST(value AS INTEGER), excluded.value)", (floor,),
            )
        return int(deleted)

    # -- introspection ---------------------------------------------------------------------

    def stats(self, tenant: str) -> StoreStats:
        def grouped(sql: str) -> dict[str, int]:
            return {key: int(count) for key, count in self._db.query(sql, (tenant,))}

        return {
            "tenant": tenant,
            "nodes": grouped("SELECT kind, count(*) FROM nodes WHERE tenant = ? GROUP BY kind"),
            "edges": grouped("SELECT type, count(*) FROM edges WHERE tenant = ? GROUP BY type"),
            "vectors": grouped(
                "SELECT space, count(*) FROM vectors WHERE tenant = ? GROUP BY space"
            ),
            "seq": self.seq(),
            "log_entries": int(self._db.scalar("SELECT count(*) FROM changes")),
        }

    def check_integrity(self) -> list[str]:
        problems = [row[0] for row in self._db.query("PRAGMA integrity_check") if row[0] != "ok"]
        problems += [f"foreign key: {row}" for row in self._db.query("PRAGMA foreign_key_check")]
        return problems


def _space(row: Sequence[Any]) -> VectorSpace:
    return VectorSpace(name=row[0], dim=row[1], model=row[2], metric=row[3],
                       quantization=row[4], storage=row[5])

