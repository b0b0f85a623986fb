"""Graph peer reference: networkx DiGraph over the shared power-law graph.

Measures building the graph (with random edge weights), bounded 2-hop expansion, unweighted
shortest paths (bidirectional BFS) and weighted shortest paths (bidirectional Dijkstra), each
size in its own spawned process. A build that passes the memory or time budget is abandoned and
the next smaller size is tried, so the table shows the largest size that fits.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial

import networkx as nx
import numpy as np
from common import (
    FANOUT_LIMIT,
    MIB,
    BenchConfig,
    Row,
    Section,
    edge_weights,
    package_version,
    percentiles,
    power_law_graph,
    print_sections,
    progress,
    rss_bytes,
    run_isolated,
    sample_node_pairs,
    sample_seed_nodes,
    timed,
)

FULL_SIZES = ((100_000, 1_000_000), (1_000_000, 10_000_000))
QUICK_SIZES = ((10_000, 100_000),)
N_SAMPLES = 200
EDGE_CHUNK = 1_000_000
RAM_BUDGET = 12 * 2**30
TIME_BUDGET_S = 300.0


@dataclass
class GraphResult:
    """What one size's child process reports back."""

    nodes: int
    edges: int
    build: Row
    queries: list[Row]
    aborted: str = ""


def describe_graph(n_nodes: int, n_edges: int) -> Row:
    """Generate (or load from the cache) the graph and describe its degrees."""
    (src, dst), seconds = timed(lambda: power_law_graph(n_nodes, n_edges))
    out_deg, in_deg = (
        np.bincount(src, minlength=n_nodes),
        np.bincount(dst, minlength=n_nodes),
    )
    return {
        "nodes": n_nodes,
        "edges": n_edges,
        "generate or load s": seconds,
        "max out-degree": int(out_deg.max()),
        "max in-degree": int(in_deg.max()),
        "nodes without out-edges": int((out_deg == 0).sum()),
    }


def build_digraph(n_nodes: int, n_edges: int) -> tuple[nx.DiGraph, Row, str]:
    """Build the weighted DiGraph in chunks, stopping early past RAM_BUDGET or TIME_BUDGET_S."""
    src, dst = power_law_graph(n_nodes, n_edges)
    weights = edge_weights(n_edges)
    rss_before, start = rss_bytes(), time.perf_counter()
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n_nodes))
    for lo in progress(range(0, n_edges, EDGE_CHUNK), f"networkx build {n_edges:,}"):
        hi = lo + EDGE_CHUNK
        graph.add_weighted_edges_from(
            zip(
                src[lo:hi].tolist(),
                dst[lo:hi].tolist(),
                weights[lo:hi].tolist(),
                strict=True,
            )
        )
        used, elapsed = rss_bytes() - rss_before, time.perf_counter() - start
        if used > RAM_BUDGET or elapsed > TIME_BUDGET_S:
            reached = min(hi, n_edges)
            return (
                graph,
                {},
                f"abandoned at {reached:,} edges: {used / 2**30:.1f} GiB, {elapsed:.0f} s",
            )
    seconds, used = time.perf_counter() - start, rss_bytes() - rss_before
    build: Row = {
        "build s": seconds,
        "edges/s": n_edges / seconds,
        "RSS MiB": used / MIB,
        "B/edge": used / n_edges,
    }
    return graph, build, ""


def two_hop_bounded(graph: nx.DiGraph, seed: int, limit: int = FANOUT_LIMIT) -> set[int]:
    """Nodes within two out-hops of ``seed`` (seed included), stopping once ``limit`` are collected.

    Breadth-first: all of hop 1 before hop 2, neighbours in adjacency order. This is the fan-out
    bound loomdb applies, so both sides return at most ``limit`` nodes.
    """
    found, frontier = {seed}, [seed]
    for _ in range(2):
        next_frontier = []
        for node in frontier:
            for neighbour in graph.successors(node):
                if neighbour not in found:
                    found.add(neighbour)
                    next_frontier.append(neighbour)
                    if len(found) >= limit:
                        return found
        frontier = next_frontier
    return found


def shortest_path_or_none(
    graph: nx.DiGraph, source: int, target: int, weight: str | None
) -> list[int] | None:
    """``nx.shortest_path``: bidirectional BFS, or Dijkstra given a weight; None if unreachable."""
    try:
        path: list[int] = nx.shortest_path(graph, source, target, weight=weight)
    except nx.NetworkXNoPath:
        return None
    return path


def time_each(
    label: str, calls: Sequence[Callable[[], object]]
) -> tuple[list[float], list[object]]:
    """Run each call once, timing it; return (seconds per call, results)."""
    seconds, results = [], []
    for call in progress(calls, label):
        result, elapsed = timed(call)
        seconds.append(elapsed)
        results.append(result)
    return seconds, results


def query_row(operation: str, seconds: list[float], outcome: str) -> Row:
    """One query-table row: latency percentiles plus an outcome summary."""
    return {"operation": operation, **percentiles(seconds), "outcome": outcome}


def measure_queries(graph: nx.DiGraph, n_nodes: int) -> list[Row]:
    """2-hop expansion, BFS shortest path and Dijkstra shortest path over fixed random samples."""
    seeds = sample_seed_nodes(n_nodes, N_SAMPLES).tolist()
    pairs = sample_node_pairs(n_nodes, N_SAMPLES).tolist()
    rows = []
    seconds, sets = time_each("2-hop", [partial(two_hop_bounded, graph, s) for s in seeds])
    sizes = [len(found) for found in sets if isinstance(found, set)]
    capped = sum(size >= FANOUT_LIMIT for size in sizes)
    rows.append(
        query_row(
            f"2-hop out, cap {FANOUT_LIMIT:,}",
            seconds,
            f"mean {np.mean(sizes):.0f} nodes, {capped}/{len(sizes)} hit cap",
        )
    )
    for operation, weight in (
        ("shortest path (bidir. BFS)", None),
        ("weighted shortest path (bidir. Dijkstra)", "weight"),
    ):
        calls = [partial(shortest_path_or_none, graph, s, t, weight) for s, t in pairs]
        seconds, paths = time_each(operation, calls)
        found = [p for p in paths if isinstance(p, list)]
        hops = np.mean([len(p) - 1 for p in found]) if found else float("nan")
        rows.append(
            query_row(
                operation,
                seconds,
                f"{len(found)}/{len(pairs)} reachable, mean {hops:.1f} hops",
            )
        )
    return rows


def bench_networkx(n_nodes: int, n_edges: int) -> GraphResult:
    """Build and query one graph size (run in a child process)."""
    graph, build, aborted = build_digraph(n_nodes, n_edges)
    if aborted:
        return GraphResult(n_nodes, n_edges, build, [], aborted)
    return GraphResult(n_nodes, n_edges, build, measure_queries(graph, n_nodes))


def bench_size(n_nodes: int, n_edges: int) -> list[GraphResult]:
    """Measure a size, falling back to half-size graphs while the build does not fit the budget."""
    results = []
    while n_edges >= 100_000:
        print(
            f"[bench_graph_peers] networkx {n_nodes:,} nodes / {n_edges:,} edges",
            file=sys.stderr,
        )
        try:
            result = run_isolated(bench_networkx, n_nodes, n_edges)
        except BrokenProcessPool as exc:  # e.g. killed by the OOM killer
            result = GraphResult(n_nodes, n_edges, {}, [], f"process died: {exc}")
        results.append(result)
        if not result.aborted:
            break
        n_nodes, n_edges = n_nodes // 2, n_edges // 2
    return results


def size_columns(result: GraphResult) -> Row:
    """Leading columns that name the graph."""
    return {
        "library": f"networkx {package_version('networkx')} DiGraph",
        "nodes": result.nodes,
        "edges": result.edges,
    }


def run(cfg: BenchConfig) -> list[Section]:
    """networkx build and query tables over every configured size."""
    sizes = QUICK_SIZES if cfg.quick else FULL_SIZES
    graphs = [run_isolated(describe_graph, n, m) for n, m in sizes]
    results = [r for n, m in sizes for r in bench_size(n, m)]
    build_rows = [{**size_columns(r), **(r.build or {"note": r.aborted})} for r in results]
    query_rows = [{**size_columns(r), **row} for r in results for row in r.queries]
    return [
        Section("Graph generator (power law)", GENERATOR_NOTES, graphs),
        Section("Graph peers: networkx build", BUILD_NOTES, build_rows),
        Section("Graph peers: networkx queries", QUERY_NOTES, query_rows),
    ]


GENERATOR_NOTES = (
    "`common.power_law_graph(n_nodes, n_edges, seed)`: distinct directed edges without self "
    "loops; sources drawn with Zipf rank exponent 0.5 and targets with 0.8 (different hubs), so "
    "out- and in-degrees are heavy-tailed. Vectorised numpy, cached under "
    "`benchmarks/.work/graphs`; the time shown is generation on the first run and loading from "
    "the cache afterwards."
)
BUILD_NOTES = (
    "`nx.DiGraph` with all nodes added, then `add_weighted_edges_from` in chunks of 1M edges "
    "(weights uniform in [1, 10)), from Python lists. RSS = growth of a fresh process across the "
    f"build. A build is abandoned past {RAM_BUDGET / 2**30:.0f} GiB or {TIME_BUDGET_S:.0f} s "
    "and the next smaller (half) size is tried; such rows carry a note."
)
QUERY_NOTES = (
    f"{N_SAMPLES} random seed nodes / {N_SAMPLES} random (source, target) pairs, the same for "
    "every system (`common.sample_seed_nodes`, `common.sample_node_pairs`). 2-hop: set of nodes "
    "reachable in at most two out-edges, seed included, breadth-first, stopping once "
    f"{FANOUT_LIMIT:,} nodes are collected. Shortest paths follow out-edges with "
    "`nx.shortest_path` (bidirectional BFS unweighted, bidirectional Dijkstra with "
    "`weight='weight'`); unreachable pairs are timed too (a full search)."
)


if __name__ == "__main__":
    print_sections(run(BenchConfig(quick="--quick" in sys.argv)))
