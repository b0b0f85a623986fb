"""loomdb vector search by quantization, warm, on the stores bench_core built."""

from __future__ import annotations

import time

import numpy as np
from bench_core import FILTERED_QUERIES, QUANTIZATIONS, store_path
from common import (
    BenchConfig,
    Section,
    ground_truth,
    load_vectors,
    measure_search,
    path_bytes,
    queries,
    rss_bytes,
    run_isolated,
)

import loomdb


def search_space(n: int, space: str, n_queries: int, k: int) -> dict[str, object]:
    """In a fresh process: warm the index, then latency and recall through db.vector_search."""
    qs = queries(n_queries)
    truth = ground_truth(load_vectors(n), qs, k)
    before = rss_bytes()
    db = loomdb.open(store_path(n), read_only=True)
    start = time.perf_counter()
    db.warm_up(space)
    warm_s = time.perf_counter() - start
    db.vector_search(qs[0], k=k, space=space)
    index_ram = rss_bytes() - before
    row = measure_search(
        lambda q: [int(h.id[1:]) for h in db.vector_search(q, k=k, space=space)], qs, truth)
    filtered = [time.perf_counter()]
    for q in qs[:FILTERED_QUERIES]:
        db.vector_search(q, k=k, space=space, where={"props.g": 3})
        filtered.append(time.perf_counter())
    db.close()
    disk = path_bytes(store_path(n) / "index" / space)
    return {"N": n, "quantization": space, **row,
            "10% filter p50 ms": float(np.median(np.diff(filtered))) * 1e3,
            "warm_up s": warm_s, "index RAM B/vector": index_ram / n,
            "index disk B/vector": disk / n}


def run(cfg: BenchConfig) -> list[Section]:
    sizes = [20_000] if cfg.quick else [100_000, 1_000_000]
    rows = [run_isolated(search_space, n, q, cfg.n_queries, cfg.k)
            for n in sizes for q in QUANTIZATIONS]
    settings = loomdb.IndexSettings()
    return [Section("Vector search by quantization", (
        f"db.vector_search, one query at a time, k={cfg.k}, {cfg.n_queries} held-out queries, "
        f"recall against exact search. HNSW M={settings.m}, efConstruction="
        f"{settings.ef_construction}, efSearch={settings.ef_search}; f16/i8/b1 re-score "
        "exactly from the stored vectors (oversample "
        f"{settings.oversample_f16}/{settings.oversample_i8}/{settings.oversample_b1}). Each "
        "space is measured in a fresh process after db.warm_up() (its time is shown; without "
        "it the first queries on a cold cache fault the memory-mapped index in from disk). "
        f"'10% filter' ({FILTERED_QUERIES} queries) matches one node in ten (props.g = 3): "
        "its time is mostly SQLite evaluating the filter over every node's props JSON "
        "(SQLite 3.40 here, no JSONB). RAM is the RSS growth after the warm-up."), rows)]
