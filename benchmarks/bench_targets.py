"""Targets from the core-store issue: met, or missed by how much."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common import BenchConfig, Section

Rows = list[dict[str, Any]]


def _rows(module: str, title_part: str, quick: bool) -> Rows:
    from run_all import load_results  # the stored results of this run's earlier modules

    stored = load_results(module, quick)
    if stored is None:
        return []
    return [row for s in stored[1] if title_part in s.title for row in s.rows]


def _verdict(value: float | None, limit: float, higher_is_better: bool) -> str:
    if value is None:
        return "not measured"
    if (value >= limit) if higher_is_better else (value <= limit):
        return "met"
    miss = (limit - value) / limit if higher_is_better else (value - limit) / limit
    return f"missed by {miss:.0%}"


def _pick(rows: Rows, key: str, **match: object) -> float | None:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()):
            value = row.get(key)
            return float(value) if value is not None else None
    return None


def run(cfg: BenchConfig) -> list[Section]:
    big = 20_000 if cfg.quick else 1_000_000
    small = 20_000 if cfg.quick else 100_000
    core = _rows("bench_core", "Bulk insert", cfg.quick)
    search = _rows("bench_search", "Vector search", cfg.quick)
    graph = _rows("bench_graph", "graph", cfg.quick)
    best = max((r for r in search if r.get("N") == big), default={},
               key=lambda r: float(r.get("recall@10", 0)))
    checks: list[tuple[str, float, bool, Callable[[], float | None]]] = [
        (f"insert {small:,} nodes with vectors (s)", 5.0, False,
         lambda: _pick(core, "insert s", N=small)),
        (f"open {big:,} store + first query (s)", 1.0, False,
         lambda: _pick(core, "open + first query s", N=big)),
        (f"recall@10 at {big:,}, f32", 0.95, True,
         lambda: _pick(search, "recall@10", N=big, quantization="f32")),
        (f"p50 ms at {big:,}, f32", 1.0, False,
         lambda: _pick(search, "p50 ms", N=big, quantization="f32")),
        (f"p99 ms at {big:,}, f32", 5.0, False,
         lambda: _pick(search, "p99 ms", N=big, quantization="f32")),
        (f"best recall@10 at {big:,} ({best.get('quantization', '-')})", 0.95, True,
         lambda: float(best["recall@10"]) if best else None),
        ("2-hop expand p50 ms", 5.0, False,
         lambda: _pick(graph, "p50 ms", operation="2-hop expand")),
    ]
    rows = []
    for name, limit, higher, measure in checks:
        value = measure()
        rows.append({"target": name, "limit": f"{'>=' if higher else '<='} {limit:g}",
                     "measured": value, "verdict": _verdict(value, limit, higher)})
    notes = ("Computed from the stored results of bench_core, bench_search and bench_graph; the "
             "sections above give the settings and the reasons where a target is missed.")
    return [Section("Targets", notes, rows)]
