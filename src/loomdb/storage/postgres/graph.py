"""Graph traversals as recursive CTEs, run in the server in one statement each.

Both walk the graph one *level* per iteration: the CTE's row for level ``h`` carries arrays
of the nodes first reached at ``h`` (``found``), the edge that reached each (``via``) and
every node seen so far (``seen``). Window functions and aggregates inside a LATERAL
subquery see a whole level at once, which a per-node recursive CTE cannot, so the search
is a true breadth-first search that never revisits a node.

``expand_ids`` reproduces ``loomdb.graph.expand`` exactly, bounds included: a level looks at
the first ``room * 8 + 64`` edges around the frontier (strongest, then oldest; an edge with
both ends in the frontier counted twice, as ``adjacent`` lists it), and keeps at most
``room`` new nodes, in the order their first edge comes. ``shortest_path_edges`` is a plain
breadth-first search from ``start`` that stops at the level reaching ``goal``; its fan-out
is not bounded (the generic search's is), and among equally short paths it keeps, for each
node, the strongest then oldest edge that reached it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...model import Direction, Edge
from .connection import Conn
from .core import Core, no_nul
from .rows import EDGE_FROM, decode_edge

__all__ = ["PostgresGraph"]

# The edges around a level's frontier ``fr`` as (eid, far end, weight), one SELECT per side.
# No tenant test on edges: the frontier holds the tenant's nodes only, an edge always has its
# endpoints' tenant, and RLS checks it anyway (a tenant test here tempted the planner into
# AND-ing the tenant index into every lookup when statistics were missing).
_SIDES: dict[str, tuple[str, ...]] = {
    "out": ("SELECT e.eid, e.dst AS far, e.weight FROM unnest({fr}) AS f(nid) "
            "JOIN edges e ON e.src = f.nid{types}",),
    "in": ("SELECT e.eid, e.src AS far, e.weight FROM unnest({fr}) AS f(nid) "
           "JOIN edges e ON e.dst = f.nid{types}",),
}
_SIDES["both"] = _SIDES["out"] + _SIDES["in"]
# edges by eid with the columns ``decode_edge`` reads, and that read from alias ``ed``
_EDGE_ROWS = ("SELECT e.eid, s.id AS src, d.id AS dst, e.type, e.weight, e.confidence, "
              f"e.props::text AS props, e.created, e.last_used, e.tenant {EDGE_FROM}")
_EDGE_OUT = ", ".join(f"ed.{c}" for c in ("src", "dst", "type", "weight", "confidence", "props",
                                          "created", "last_used", "tenant"))

# ``seen`` is a jsonb object keyed by node: ``?`` finds a key by binary search whatever the
# planner believes about array sizes (a join against unnest(seen) became a nested loop of
# candidates x seen on tables without statistics).
_EXPAND = """
WITH RECURSIVE level (hop, found, via, seen, total) AS (
    SELECT 0, %(seeds)s::int8[], '{{}}'::int8[],
           (SELECT jsonb_object_agg(s::text, 0) FROM unnest(%(seeds)s::int8[]) AS s),
           cardinality(%(seeds)s::int8[])
  UNION ALL
    SELECT r.hop + 1, x.found, x.via, r.seen || x.added, r.total + cardinality(x.found)
    FROM level r CROSS JOIN LATERAL (
        SELECT coalesce(array_agg(n.far ORDER BY n.pos), '{{}}') AS found,
               coalesce(array_agg(n.eid ORDER BY n.pos), '{{}}') AS via,
               coalesce(jsonb_object_agg(n.far::text, n.hop), '{{}}') AS added
        FROM (
            -- the first `room` new nodes, in the order of the edge that first reached each
            SELECT d.far, d.eid, d.pos, r.hop + 1 AS hop FROM (
                SELECT DISTINCT ON (c.far) c.far, c.eid, c.pos
                FROM (SELECT a.eid, a.far,
                             row_number() OVER (ORDER BY a.weight DESC, a.eid) AS pos
                      FROM ({sides}) AS a) AS c
                WHERE c.pos <= (%(limit)s - r.total) * 8 + 64 AND NOT r.seen ? c.far::text
                ORDER BY c.far, c.pos
            ) AS d ORDER BY d.pos LIMIT %(limit)s - r.total
        ) AS n
    ) AS x
    WHERE r.hop < %(hops)s AND cardinality(r.found) > 0 AND r.total < %(limit)s
)
SELECT l.hop, n.id, l.ord, {edge_columns}
FROM (SELECT r.hop, u.nid, u.eid, u.ord FROM level r,
      unnest(r.found, r.via) WITH ORDINALITY AS u(nid, eid, ord)) AS l
JOIN nodes n ON n.nid = l.nid
LEFT JOIN ({edge_rows}) AS ed ON ed.eid = l.eid
ORDER BY l.hop, l.ord
"""

# Here ``seen`` maps each node to the edge that reached it (null for start); the path is read
# back from ``goal`` through it.
_PATH = """
WITH RECURSIVE level (hop, found, seen) AS (
    SELECT 0, ARRAY[%(start)s]::int8[], jsonb_build_object(%(start)s::text, NULL)
  UNION ALL
    SELECT r.hop + 1, x.found, r.seen || x.added
    FROM level r CROSS JOIN LATERAL (
        SELECT coalesce(array_agg(n.far), '{{}}') AS found,
               coalesce(jsonb_object_agg(n.far::text, n.eid), '{{}}') AS added
        FROM (SELECT DISTINCT ON (a.far) a.far, a.eid FROM ({sides}) AS a
              WHERE NOT r.seen ? a.far::text ORDER BY a.far, a.weight DESC, a.eid) AS n
    ) AS x
    WHERE r.hop < %(max_depth)s AND cardinality(r.found) > 0 AND %(goal)s <> ALL(r.found)
),
reached AS (SELECT seen FROM level ORDER BY hop DESC LIMIT 1),
back (nid, eid, step) AS (
    SELECT %(goal)s::int8, (m.seen ->> %(goal)s::text)::int8, 0 FROM reached m
    WHERE m.seen ? %(goal)s::text
  UNION ALL
    SELECT p.nid, (m.seen ->> p.nid::text)::int8, b.step + 1
    FROM back b CROSS JOIN reached m JOIN edges e ON e.eid = b.eid
    CROSS JOIN LATERAL (SELECT CASE WHEN e.dst = b.nid AND {forward} THEN e.src
                                    ELSE e.dst END AS nid) AS p
    WHERE b.eid IS NOT NULL
)
SELECT {edge_select} FROM back b JOIN ({edge_rows}) AS ed ON ed.eid = b.eid
WHERE b.eid IS NOT NULL ORDER BY b.step DESC
"""


def _sides(direction: Direction, frontier: str, types: Sequence[str] | None) -> str:
    type_clause = " AND e.type = ANY(%(types)s::text[])" if types is not None else ""
    return " UNION ALL ".join(side.format(fr=frontier, types=type_clause)
                              for side in _SIDES[direction])


class PostgresGraph(Core):
    """Mixed into ``PostgresBackend``: the native traversal seam ``loomdb.graph`` uses."""

    native_graph = True

    def expand_ids(
        self, tenant: str, seeds: Sequence[str], hops: int, types: Sequence[str] | None,
        direction: Direction, limit: int,
    ) -> tuple[dict[str, int], list[Edge]]:
        """Node ids reached from ``seeds`` (which exist) with their hop, in discovery order,
        and the edge that first reached each, exactly as ``loomdb.graph.expand`` walks."""
        sides = _sides(direction, "r.found", types)
        statement = _EXPAND.format(sides=sides, edge_columns=_EDGE_OUT, edge_rows=_EDGE_ROWS)

        def read(conn: Conn) -> list[Any]:
            nids = self._nids(conn, tenant, seeds, lock=False)
            ordered = [nids[s] for s in dict.fromkeys(seeds)]
            return conn.execute(statement, {"seeds": ordered, "t": tenant, "hops": hops,
                                            "limit": limit, "types": list(types or [])}
                                ).fetchall()

        depth: dict[str, int] = {}
        edges: list[Edge] = []
        for row in self._db.run(read, tenant):
            depth[row[1]] = row[0]
            if row[0] > 0:
                edges.append(decode_edge(row[3:]))
        return depth, edges

    def shortest_path_edges(
        self, tenant: str, start: str, goal: str, max_depth: int,
        types: Sequence[str] | None, direction: Direction,
    ) -> list[Edge] | None:
        """The edges of a shortest (fewest edges) path ``start -> goal`` (which exist and
        differ), following ``direction``, or ``None`` within ``max_depth`` edges."""
        forward = {"out": "TRUE", "in": "FALSE", "both": "b.nid = e.dst"}[direction]
        statement = _PATH.format(
            sides=_sides(direction, "r.found", types), forward=forward,
            edge_select=_EDGE_OUT, edge_rows=_EDGE_ROWS)

        def read(conn: Conn) -> list[Any]:
            nids = self._nids(conn, tenant, no_nul([start, goal]), lock=False)
            return conn.execute(statement, {"start": nids[start], "goal": nids[goal],
                                            "t": tenant, "max_depth": max_depth,
                                            "types": list(types or [])}).fetchall()

        rows = self._db.run(read, tenant)
        return [decode_edge(row) for row in rows] or None
