"""loomdb core store: bulk insert, index build, open + first query, search by quantization."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from common import (
    BenchConfig,
    Section,
    load_vectors,
    path_bytes,
    progress,
    queries,
    run_isolated,
    work_path,
)

import loomdb

BATCH = 10_000
QUANTIZATIONS = ("f32", "f16", "i8", "b1")
FILTERED_QUERIES = 20  # a props filter scans every node's JSON: ~2 s each at 1M
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def store_path(n: int) -> Path:
    return work_path("stores", f"core_{n}")


def bulk_insert(n: int) -> dict[str, object]:
    """Insert n nodes with vectors (space f32, default durability=full), then close."""
    path = store_path(n)
    shutil.rmtree(path, ignore_errors=True)
    base = load_vectors(n)
    db = loomdb.open(path)
    db.create_space("f32", 384, model=MODEL, quantization="f32")
    start = time.perf_counter()
    for lo in progress(range(0, n, BATCH), "insert", total=-(-n // BATCH)):
        hi = min(n, lo + BATCH)
        db.add_nodes([{"id": f"v{i}", "kind": "chunk", "props": {"g": i % 10}}
                      for i in range(lo, hi)], vectors=base[lo:hi], space="f32")
    insert_s = time.perf_counter() - start
    start = time.perf_counter()
    db.close()  # builds the f32 index from the stored vectors and saves it
    index_s = time.perf_counter() - start
    return {"N": n, "insert s": insert_s, "rows/s": n / insert_s, "index build s": index_s,
            "store MiB": path_bytes(path / "loom.db") / 2**20}


def add_quantized_spaces(n: int) -> dict[str, float]:
    """The same vectors in one space per quantization; returns each index's build time."""
    base = load_vectors(n)
    builds = {}
    with loomdb.open(store_path(n), durability="normal") as db:
        ids = [f"v{i}" for i in range(n)]
        for q in QUANTIZATIONS[1:]:
            db.create_space(q, 384, model=MODEL, quantization=q)  # type: ignore[arg-type]
            for lo in range(0, n, 50_000):
                db.set_vectors(ids[lo:lo + 50_000], base[lo:lo + 50_000], space=q)
            start = time.perf_counter()
            db.reindex(q)
            builds[q] = time.perf_counter() - start
    return builds


def open_and_first_query(n: int) -> dict[str, float]:
    """In a fresh process: open the store and answer one query (index loaded from disk)."""
    q = queries(1)[0]
    start = time.perf_counter()
    with loomdb.open(store_path(n), read_only=True) as db:
        db.vector_search(q, k=10, space="f32")
        seconds = time.perf_counter() - start
    return {"open + first query s": seconds}


def run(cfg: BenchConfig) -> list[Section]:
    sizes = [20_000] if cfg.quick else [100_000, 1_000_000]
    inserts, builds = [], []
    for n in sizes:
        row = bulk_insert(n)
        row.update(run_isolated(open_and_first_query, n))
        inserts.append(row)
        seconds = {"f32": row["index build s"], **add_quantized_spaces(n)}
        builds += [{"N": n, "quantization": q, "build s": seconds[q],
                    "vectors/s": n / seconds[q]} for q in QUANTIZATIONS]
    settings = loomdb.IndexSettings()
    return [
        Section("Bulk insert and open", (
            f"Nodes with 384-d MiniLM vectors (real, grown by perturbation), batches of {BATCH}, "
            "durability=full (fsync per commit). 'insert' is until the last commit returned; "
            "'index build' is the close() that builds and saves the HNSW view. 'open + first "
            "query' runs in a fresh process: the index is memory-mapped, so this is the cost "
            "of a cold start, and its first queries fault pages in (see bench_search)."),
            inserts),
        Section("Index builds by quantization", (
            f"HNSW M={settings.m}, efConstruction={settings.ef_construction}, 2 threads, "
            "from the stored vectors (db.reindex)."), builds),
    ]
