"""Vector spaces, vectors, the change log and native vector search with pgvector.

One ``vectors`` table holds every space; each space gets its own partial HNSW index, whose
expression casts to the space's dimension (pgvector indexes need a fixed one)::

    f32 f16 i8   CREATE INDEX ... USING hnsw ((vec::halfvec(dim)) halfvec_<metric>_ops)
                 WITH (m, ef_construction) WHERE space = '<name>'         (dim <= 4,000)
    b1           ... USING hnsw ((binary_quantize(vec)::bit(dim)) bit_hamming_ops) ...
                                                                          (dim <= 64,000)

Queries order by the same expression, with the space name and dimension inlined as literals
(validated names; a bound parameter would keep the planner from proving the partial index's
predicate). The index only proposes candidates: ``k x oversample`` of them are re-scored
exactly from the stored float32 vectors with ``loomdb.similarity.exact_scores``, so scores
have the same direction and scale as on SQLite. Filters and other tenants' rows are skipped
by an iterative index scan (``hnsw.iterative_scan = relaxed_order``); a filter matching at
most ``exact_threshold`` vectors, a space without an index, or an index scan that returns
fewer than ``k`` rows is answered by an exact scan instead, so ``k`` matches give ``k`` hits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from psycopg import sql

from ...errors import Conflict, CorruptStore, InvalidInput, NotFound
from ...filters import FilterNode
from ...model import Node, VectorSpace
from ...similarity import exact_scores
from ..base import Change, Labels, Matrix
from .connection import ALL_TENANTS, Conn
from .core import Core, no_nul
from .rows import NODE_COLUMNS, SPACE_COLUMNS, decode_node, decode_space

__all__ = ["ANN_SETTINGS", "MAX_DIM", "PostgresVectors", "ann_index_ddl", "ann_settings",
           "ann_statement"]

MAX_DIM = 16_000  # pgvector's vector type
HALFVEC_INDEX_DIM = 4_000
BIT_INDEX_DIM = 64_000
DISTANCE = {"cosine": "<=>", "ip": "<#>", "l2": "<->"}
OPS = {"cosine": "cosine", "ip": "ip", "l2": "l2"}
# a higher-is-better score from pgvector's distance, NaN (a zero vector's cosine) as 0
SCORE = {"cosine": "coalesce(nullif(1 - ({d}), 'NaN'), 0)", "ip": "-({d})", "l2": "-({d})"}
MAX_EF_SEARCH = 1_000
# pgvector's own HNSW defaults, not IndexSettings' m=32/ef_construction=80 (tuned for faiss at
# 1M vectors): pgvector inserts one row at a time into the graph, and 32/80 made inserts ~4x
# slower here (3,000 16-d vectors: 7.8 s against 2.0 s). Raise hnsw.ef_search for recall.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64


def _index_name(space: str) -> sql.Identifier:
    digest = hashlib.sha1(space.encode()).hexdigest()[:16]
    return sql.Identifier(f"loomdb_ann_{digest}")


def _ann_expression(space: VectorSpace, column: str) -> str | None:
    """The indexed expression of ``column`` (``vec`` or a query parameter), or ``None`` when
    pgvector cannot index the space's dimension."""
    if space.quantization == "b1":
        return (f"(binary_quantize({column})::bit({space.dim}))"
                if space.dim <= BIT_INDEX_DIM else None)
    return f"({column}::halfvec({space.dim}))" if space.dim <= HALFVEC_INDEX_DIM else None


def ann_index_ddl(space: VectorSpace, m: int = HNSW_M,
                  ef_construction: int = HNSW_EF_CONSTRUCTION) -> sql.Composed | None:
    """The partial HNSW index of one space (see the module docstring)."""
    expression = _ann_expression(space, "vec")
    if expression is None:
        return None
    ops = "bit_hamming_ops" if space.quantization == "b1" else f"halfvec_{OPS[space.metric]}_ops"
    return sql.SQL("CREATE INDEX {} ON vectors USING hnsw ({} {}) WITH (m = {}, "
                   "ef_construction = {}) WHERE space = {}").format(
        _index_name(space.name), sql.SQL(expression), sql.SQL(ops), sql.Literal(m),
        sql.Literal(ef_construction), sql.Literal(space.name))


def ann_statement(space: VectorSpace, clause: str) -> str:
    """The index search: ``(vid, vec, node...)`` of the candidates nearest to parameter
    ``query``, for parameters ``(tenant, *filter params, query, fetch)``.

    The index scan must drive the plan, so the node filter is a scalar subquery per
    candidate (never pulled up into a join the planner could start from the nodes side),
    and the nodes are looked up only for the ``fetch`` rows that come out."""
    column, probe = _ann_expression(space, "v.vec"), _ann_expression(space, "%b::vector")
    distance = "<~>" if space.quantization == "b1" else DISTANCE[space.metric]
    node_test = (f" AND coalesce((SELECT TRUE{clause} FROM nodes n WHERE n.nid = v.nid), false)"
                 if clause else "")
    return (f"SELECT c.vid, c.vec, nd.* FROM (SELECT v.vid, v.vec, v.nid FROM vectors v "
            f"WHERE v.space = {sql.Literal(space.name).as_string()} AND v.tenant = %s"
            f"{node_test} ORDER BY {column} {distance} {probe} LIMIT %s) AS c "
            f"CROSS JOIN LATERAL (SELECT {NODE_COLUMNS} FROM nodes n WHERE n.nid = c.nid "
            "OFFSET 0) AS nd")  # OFFSET 0: a primary-key lookup per candidate, never a scan


ANN_SETTINGS = ("SELECT set_config('hnsw.ef_search', %s, true), "
                "set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                "set_config('hnsw.max_scan_tuples', %s, true), "
                "set_config('enable_sort', 'off', true)")


def ann_settings(ef_search: int, fetch: int) -> tuple[str, str]:
    """Parameters of ``ANN_SETTINGS``: a candidate list at least ``fetch`` long (pgvector
    caps it at 1,000), and an iterative scan that may read 20x that many tuples to find
    ``fetch`` rows that pass the filters, before the caller falls back to exact search.

    ``enable_sort = off`` keeps the planner on the index when its statistics are missing
    or stale (a freshly loaded table looks like one row, and sorting it all looks cheaper);
    when no index applies it still sorts: exact, and slower."""
    return str(min(max(ef_search, fetch), MAX_EF_SEARCH)), str(max(20_000, fetch * 20))


def _matrix(rows: Sequence[Any], column: int, dim: int) -> Matrix:
    if not rows:
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack([row[column] for row in rows]).astype(np.float32, copy=False)


def _labels(rows: Sequence[Any]) -> Labels:
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


class PostgresVectors(Core):
    """Mixed into ``PostgresBackend``: the vector half of the Backend protocol, plus
    ``search_vectors``, the native search ``loomdb.index.PgvectorIndex`` delegates to."""

    native_vectors = True
    text_score = "ts_rank_cd"

    # -- spaces ----------------------------------------------------------------------------

    def create_space(self, space: VectorSpace) -> VectorSpace:
        if space.dim > MAX_DIM:
            raise InvalidInput(f"vector space {space.name!r}: dim {space.dim} exceeds the "
                               f"{MAX_DIM} dimensions pgvector stores")

        def write(conn: Conn) -> VectorSpace:
            inserted = conn.execute(
                "INSERT INTO spaces VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (name) DO NOTHING",
                (space.name, space.dim, space.model, space.metric, space.quantization,
                 space.storage)).rowcount
            if not inserted:
                row = conn.execute(f"SELECT {SPACE_COLUMNS} FROM spaces WHERE name = %s",
                                   (space.name,)).fetchone()
                assert row is not None  # it conflicted, and spaces are never deleted
                existing = decode_space(row)
                if existing != space:
                    raise Conflict(f"vector space {space.name!r} exists as {existing}")
                return existing
            ddl = ann_index_ddl(space)
            if ddl is not None:
                conn.execute(ddl)
            return space

        return self._db.run(write, ALL_TENANTS)

    def get_space(self, name: str) -> VectorSpace:
        # a space never changes once created (a different one is a Conflict), so cache it
        if (cached := self._spaces.get(name)) is not None:
            return cached
        rows = self._db.query(f"SELECT {SPACE_COLUMNS} FROM spaces WHERE name = %s", (name,),
                              tenant=ALL_TENANTS)
        if not rows:
            known = ", ".join(s.name for s in self.list_spaces()) or "none"
            raise NotFound(f"no vector space {name!r} (spaces: {known})")
        space = decode_space(rows[0])
        if not self._db.in_transaction():  # a rollback could still take it back
            self._spaces[name] = space
        return space

    def list_spaces(self) -> list[VectorSpace]:
        rows = self._db.query(f"SELECT {SPACE_COLUMNS} FROM spaces ORDER BY name",
                              tenant=ALL_TENANTS)
        return [decode_space(row) for row in rows]

    # -- vectors ---------------------------------------------------------------------------

    def put_vectors(self, tenant: str, space: str, ids: Sequence[str], vectors: Matrix) -> None:
        storage = self.get_space(space).storage
        latest = dict(zip(ids, vectors, strict=True))  # a repeated id: the last one wins

        def write(conn: Conn) -> None:
            nids = self._nids(conn, tenant, list(latest))
            # delete + insert, never update: a replaced vector gets a new label
            conn.execute("DELETE FROM vectors WHERE space = %s AND nid = ANY(%s::int8[])",
                         (space, list(nids.values())))
            rows = [_stored(v, storage) for v in latest.values()]
            conn.execute(
                "INSERT INTO vectors (space, nid, tenant, vec, raw) SELECT %s, b.nid, %s, b.vec, "
                "b.raw FROM unnest(%s::int8[], %b::vector[], %s::bytea[]) WITH ORDINALITY "
                "AS b(nid, vec, raw, ord) ORDER BY b.ord",
                (space, tenant, [nids[i] for i in latest], [r[0] for r in rows],
                 [r[1] for r in rows]))

        self._db.run(write, tenant)

    def get_vectors(self, tenant: str, space: str, ids: Sequence[str]) -> dict[str, Matrix]:
        vector_space = self.get_space(space)
        rows = self._binary(
            "SELECT n.id, v.vec, v.raw FROM vectors v JOIN nodes n ON n.nid = v.nid "
            "WHERE v.space = %s AND n.tenant = %s AND n.id = ANY(%s::text[])",
            (space, tenant, no_nul(ids)), tenant)
        return {row[0]: _native(row[1], row[2], vector_space.storage) for row in rows}

    def delete_vectors(self, tenant: str, space: str, ids: Sequence[str]) -> int:
        def write(conn: Conn) -> int:
            return conn.execute(
                "DELETE FROM vectors WHERE space = %s AND tenant = %s AND nid IN (SELECT nid "
                "FROM nodes WHERE tenant = %s AND id = ANY(%s::text[]))",
                (space, tenant, tenant, no_nul(ids))).rowcount

        return self._db.run(write, tenant)

    def _binary(self, statement: str, params: Sequence[Any], tenant: str) -> list[Any]:
        """Rows of a statement read in binary (vectors come back as float32 arrays)."""
        def fetch(conn: Conn) -> list[Any]:
            with conn.cursor(binary=True) as cursor:
                return cursor.execute(statement, params).fetchall()

        return self._db.run(fetch, tenant)

    def vector_labels(self, tenant: str, space: str, where: FilterNode | None) -> Labels:
        clause, params = self._where(where)
        join = " JOIN nodes n ON n.nid = v.nid" if where is not None else ""
        rows = self._db.query(f"SELECT v.vid FROM vectors v{join} WHERE v.space = %s AND "
                              f"v.tenant = %s{clause} ORDER BY v.vid",
                              (space, tenant, *params), tenant=tenant)
        return _labels(rows)

    def vectors_by_label(
        self, tenant: str, space: str, labels: Sequence[int]
    ) -> tuple[Labels, Matrix]:
        rows = self._binary(
            "SELECT vid, vec FROM vectors WHERE vid = ANY(%s::int8[]) AND space = %s AND "
            "tenant = %s ORDER BY vid", ([int(x) for x in labels], space, tenant), tenant)
        return _labels(rows), _matrix(rows, 1, self.get_space(space).dim)

    def scan_vectors(
        self, tenant: str, space: str, batch: int = 10_000
    ) -> Iterator[tuple[Labels, Matrix]]:
        dim, last = self.get_space(space).dim, -1
        while True:
            rows = self._binary(
                "SELECT vid, vec FROM vectors WHERE space = %s AND tenant = %s AND vid > %s "
                "ORDER BY vid LIMIT %s", (space, tenant, last, batch), tenant)
            if not rows:
                return
            last = rows[-1][0]
            yield _labels(rows), _matrix(rows, 1, dim)

    def nodes_by_label(self, tenant: str, space: str, labels: Sequence[int]) -> dict[int, Node]:
        rows = self._db.query(
            f"SELECT v.vid, {NODE_COLUMNS} FROM vectors v JOIN nodes n ON n.nid = v.nid "
            "WHERE v.vid = ANY(%s::int8[]) AND v.space = %s AND v.tenant = %s",
            ([int(x) for x in labels], space, tenant), tenant=tenant)
        return {row[0]: decode_node(row[1:]) for row in rows}

    # -- the change log --------------------------------------------------------------------

    def vector_changes(self, tenant: str, space: str, after: int) -> list[Change]:
        def read(conn: Conn) -> list[Change]:
            floor = conn.execute("SELECT coalesce(max(value::bigint), 0) FROM meta "
                                 "WHERE key = 'log_floor'").fetchone()
            if after < int(floor[0] if floor else 0):
                raise CorruptStore(f"change log purged to seq {floor}, index needs {after}")
            rows = conn.execute(
                "SELECT seq, op, ref FROM changes WHERE seq > %s AND entity = 'vector' "
                "AND space = %s AND tenant = %s ORDER BY seq", (after, space, tenant)).fetchall()
            return [Change(seq, op, ref) for seq, op, ref in rows]

        return self._db.run(read, tenant)

    def vector_tenants(self, space: str) -> list[str]:
        rows = self._db.query("SELECT DISTINCT tenant FROM vectors WHERE space = %s "
                              "ORDER BY tenant", (space,), tenant=ALL_TENANTS)
        return [row[0] for row in rows]

    def record_index_stamp(self, tenant: str, space: str, seq: int) -> None:
        def write(conn: Conn) -> None:
            conn.execute("INSERT INTO index_stamps VALUES (%s,%s,%s) ON CONFLICT (space, tenant) "
                         "DO UPDATE SET seq = excluded.seq", (space, tenant, seq))

        self._db.run(write, tenant)

    def purge_log(self) -> int:
        def write(conn: Conn) -> int:
            row = conn.execute(
                "SELECT min(coalesce(s.seq, 0)) FROM (SELECT DISTINCT space, tenant FROM "
                "vectors) v LEFT JOIN index_stamps s USING (space, tenant)").fetchone()
            unstamped = row[0] if row else None
            if unstamped is None:
                current = conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()
                unstamped = current[0] if current else 0
            floor = int(unstamped)
            deleted = conn.execute("DELETE FROM changes WHERE seq <= %s", (floor,)).rowcount
            conn.execute("INSERT INTO meta VALUES ('log_floor', %s) ON CONFLICT (key) DO UPDATE "
                         "SET value = greatest(meta.value::bigint, excluded.value::bigint)::text",
                         (str(floor),))
            return int(deleted)

        return self._db.run(write, ALL_TENANTS)

    # -- native search ---------------------------------------------------------------------

    def search_vectors(
        self, tenant: str, space: VectorSpace, query: Matrix, k: int,
        where: FilterNode | None, exact: bool,
    ) -> list[tuple[Node, float]]:
        """The ``k`` nearest nodes, best first, scored like ``exact_scores`` (module doc)."""
        clause, params = self._where(where)
        threshold = self.settings.index.exact_threshold
        if where is not None:
            matching = self._count_matching(tenant, space, clause, params, threshold + 1)
            if matching == 0:
                return []
            exact = exact or matching <= threshold
        if not exact and _ann_expression(space, "vec") is not None:
            found = self._ann(tenant, space, query, k, clause, params)
            if len(found) >= k:
                return found
        return self._exact(tenant, space, query, k, clause, params)

    def _count_matching(self, tenant: str, space: VectorSpace, clause: str,
                        params: list[Any], cap: int) -> int:
        return int(self._db.scalar(
            "SELECT count(*) FROM (SELECT 1 FROM vectors v JOIN nodes n ON n.nid = v.nid "
            f"WHERE v.space = %s AND v.tenant = %s{clause} LIMIT %s) AS m",
            (space.name, tenant, *params, cap), tenant=tenant))

    def _ann(self, tenant: str, space: VectorSpace, query: Matrix, k: int, clause: str,
             params: list[Any]) -> list[tuple[Node, float]]:
        index = self.settings.index
        fetch = k * max(index.oversample(space.quantization), 2)
        statement = ann_statement(space, clause)

        def search(conn: Conn) -> list[Any]:
            conn.execute(ANN_SETTINGS, ann_settings(index.ef_search, fetch))
            with conn.cursor(binary=True) as cursor:
                return cursor.execute(statement, (tenant, *params, query, fetch)).fetchall()

        return self._rerank(space, query, self._db.run(search, tenant), k)

    def _exact(self, tenant: str, space: VectorSpace, query: Matrix, k: int, clause: str,
               params: list[Any]) -> list[tuple[Node, float]]:
        score = SCORE[space.metric].format(d=f"v.vec {DISTANCE[space.metric]} %b::vector")
        rows = self._binary(
            f"SELECT v.vid, v.vec, {NODE_COLUMNS} FROM vectors v JOIN nodes n ON n.nid = v.nid "
            f"WHERE v.space = %s AND v.tenant = %s{clause} ORDER BY {score} DESC, v.vid LIMIT %s",
            (space.name, tenant, *params, query, k + 16), tenant)
        return self._rerank(space, query, rows, k)

    @staticmethod
    def _rerank(space: VectorSpace, query: Matrix, rows: list[Any], k: int
                ) -> list[tuple[Node, float]]:
        """Exact float32 scores for candidate rows ``(vid, vec, node...)``; the best ``k``."""
        if not rows:
            return []
        scores = exact_scores(space, query, _matrix(rows, 1, space.dim))
        order = np.lexsort((_labels(rows), -scores))[:k]
        return [(decode_node(rows[i][2:]), float(scores[i])) for i in order]


def _stored(vector: Matrix, storage: str) -> tuple[Matrix, bytes | None]:
    """The float32 ``vec`` and exact ``raw`` bytes of one vector in a space's storage dtype."""
    if storage == "float16":
        return vector.astype(np.float16).astype(np.float32), None
    if storage == "float64":
        return vector.astype(np.float32), np.asarray(vector, dtype=np.float64).tobytes()
    return vector.astype(np.float32), None


def _native(vec: Matrix, raw: bytes | None, storage: str) -> Matrix:
    """A stored vector in its space's storage dtype (float64 from its exact bytes)."""
    if storage == "float64" and raw is not None:
        return np.frombuffer(raw, dtype=np.float64).copy()  # type: ignore[return-value]
    return vec.astype(np.float16 if storage == "float16" else np.float32)
