"""loomdb graph traversal: k-hop expansion and shortest paths on a power-law graph."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
from common import (
    FANOUT_LIMIT,
    BenchConfig,
    Section,
    edge_weights,
    path_bytes,
    percentiles,
    power_law_graph,
    progress,
    sample_node_pairs,
    sample_seed_nodes,
    work_path,
)

import loomdb

NODE_BATCH = 100_000
MAX_DEPTH = 16  # the reference's paths average 7-10 hops; 16 finds what it finds
WEIGHTED_PAIRS = 20  # Dijkstra here is one query per settled node: slow, so fewer pairs
EDGE_BATCH = 200_000


def build_store(n_nodes: int, n_edges: int) -> tuple[str, float]:
    """The graph as a loomdb store under .work (built once, then reused)."""
    path = work_path("stores", f"graph_{n_nodes}_{n_edges}")
    done = path / "BUILT"
    if done.exists():
        return str(path), float(done.read_text())
    shutil.rmtree(path, ignore_errors=True)
    src, dst = power_law_graph(n_nodes, n_edges)
    weights = edge_weights(n_edges)
    order = np.argsort(src, kind="stable")  # bulk load in source order: B-tree locality
    src, dst, weights = src[order], dst[order], weights[order]
    start = time.perf_counter()
    with loomdb.open(path, durability="normal") as db:
        for lo in progress(range(0, n_nodes, NODE_BATCH), "graph nodes",
                           total=-(-n_nodes // NODE_BATCH)):
            db.add_nodes([{"id": f"v{i}", "kind": "entity"}
                          for i in range(lo, min(n_nodes, lo + NODE_BATCH))])
        for lo in progress(range(0, n_edges, EDGE_BATCH), "graph edges",
                           total=-(-n_edges // EDGE_BATCH)):
            hi = min(n_edges, lo + EDGE_BATCH)
            db.add_edges([{"src": f"v{s}", "dst": f"v{d}", "type": "link", "weight": float(w)}
                          for s, d, w in zip(src[lo:hi], dst[lo:hi], weights[lo:hi],
                                             strict=True)])
    seconds = time.perf_counter() - start
    done.write_text(str(seconds))
    return str(path), seconds


def warm_file(path: Path) -> None:
    """Read a file once so its pages are in the page cache."""
    with open(path, "rb", buffering=0) as handle:
        while handle.read(16 * 2**20):
            pass


def latencies(call: object, args: list[tuple[object, ...]]) -> dict[str, object]:
    samples, found = [], 0
    for arg in args:
        start = time.perf_counter()
        result = call(*arg)  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
        found += result is not None
    return {**percentiles(samples), "found": f"{found}/{len(args)}"}


def bench(n_nodes: int, n_edges: int) -> list[dict[str, object]]:
    path, build_s = build_store(n_nodes, n_edges)
    seeds = [(f"v{i}",) for i in sample_seed_nodes(n_nodes)]
    pairs = [(f"v{a}", f"v{b}") for a, b in sample_node_pairs(n_nodes)]
    rows: list[dict[str, object]] = []
    warm_file(Path(path) / "loom.db")  # the networkx reference is all in RAM: compare warm
    with loomdb.open(path, read_only=True) as db:
        sizes = [len(db.expand(s, hops=2, limit=FANOUT_LIMIT).nodes) for (s,) in seeds[:50]]
        cases = [
            ("2-hop expand", lambda s: db.expand(s, hops=2, limit=FANOUT_LIMIT), seeds),
            ("1-hop neighbors", lambda s: db.neighbors(s, limit=100), seeds),
            ("shortest path", lambda a, b: db.shortest_path(a, b, max_depth=MAX_DEPTH), pairs),
            ("weighted path",
             lambda a, b: db.shortest_path(a, b, weighted=True, max_depth=MAX_DEPTH),
             pairs[:WEIGHTED_PAIRS]),
        ]
        for name, call, args in cases:
            rows.append({"library": "loomdb", "nodes": n_nodes, "edges": n_edges,
                         "operation": name, **latencies(call, args),
                         "queries": len(args)})
    rows[0]["mean nodes"] = float(np.mean(sizes))
    rows[0]["build s"] = build_s
    rows[0]["disk MiB"] = path_bytes(Path(path)) / 2**20
    return rows


def run(cfg: BenchConfig) -> list[Section]:
    sizes = [(20_000, 200_000)] if cfg.quick else [(1_000_000, 10_000_000)]
    rows = [row for n, m in sizes for row in bench(n, m)]
    notes = (
        "Same power-law graph, seeds and pairs as the networkx reference (common.py). "
        f"2-hop expand: out-edges, at most {FANOUT_LIMIT} nodes, strongest edges first. "
        f"Shortest path: bidirectional BFS; weighted: Dijkstra (one SQL query per settled "
        f"node, first {WEIGHTED_PAIRS} pairs); both at most {MAX_DEPTH} hops. "
        "Store opened read-only after reading its file once (warm page cache, as the "
        "in-memory reference is); single thread. The store is bulk "
        "loaded in batches of 200k edges sorted by source (durability=normal)."
    )
    return [Section("loomdb graph traversal", notes, rows)]
