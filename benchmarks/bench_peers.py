"""Vector-search peers: faiss, hnswlib and usearch HNSW indexes, Chroma and sqlite-vec.

Each (system, N) is built and queried in its own spawned process (``common.run_isolated``) so
its RAM reading is clean and everything is freed before the next one. Queries run one at a time
from Python on one thread, k=10, against exact ground truth.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Protocol

import numpy as np
from common import (
    DIM,
    MIB,
    N_POOL,
    PERTURB_COSINE,
    BenchConfig,
    Row,
    Section,
    distinct_sources,
    ground_truth,
    load_vectors,
    measure_search,
    package_version,
    path_bytes,
    print_sections,
    progress,
    queries,
    rss_bytes,
    run_isolated,
    timed,
    work_path,
)

FULL_SIZES = (100_000, 1_000_000)
QUICK_SIZES = (20_000,)
SEARCH_WIDTHS = (64, 128)
BUILD_THREADS = 2
ADD_CHUNK = 50_000
CHROMA_BATCH = 5_000
HNSW_LIBRARIES = ("faiss", "hnswlib", "usearch")
DATABASE_PEERS = ("chroma", "sqlite-vec")


class PeerIndex(Protocol):
    """What the harness needs from each peer: build, persist, tune, search."""

    label: str
    params: str
    search_widths: tuple[int | None, ...]

    def build(self, base: np.ndarray) -> None:
        """Insert all of ``base`` with ids 0..n-1 (BUILD_THREADS threads where supported)."""

    def save(self, stem: Path) -> Path:
        """Persist the index next to ``stem``; return the file or folder to measure."""

    def set_search_width(self, width: int | None) -> None:
        """Set ef / expansion for the following searches (None: the system's only setting)."""

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        """Ids of the k nearest neighbours of one query, single-threaded."""


def required_width(width: int | None) -> int:
    """The search width of an HNSW library, which always has one."""
    if width is None:
        raise ValueError("HNSW libraries need an explicit search width")
    return width


def chunks(base: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(start id, rows) pieces of ``base`` so builds can show progress."""
    return [(s, base[s : s + ADD_CHUNK]) for s in range(0, len(base), ADD_CHUNK)]


class FaissHnsw:
    """faiss IndexHNSWFlat, inner product, OpenMP threads for build and one for queries."""

    label = "faiss IndexHNSWFlat"
    params = "M=16, efConstruction=40"
    search_widths: tuple[int | None, ...] = SEARCH_WIDTHS

    def __init__(self) -> None:
        import faiss

        self.faiss = faiss
        self.index = faiss.IndexHNSWFlat(DIM, 16, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = 40

    def build(self, base: np.ndarray) -> None:
        self.faiss.omp_set_num_threads(BUILD_THREADS)
        for _, rows in progress(chunks(base), f"build {self.label}"):
            self.index.add(rows)
        self.faiss.omp_set_num_threads(1)

    def save(self, stem: Path) -> Path:
        path = stem.with_suffix(".faiss")
        self.faiss.write_index(self.index, str(path))
        return path

    def set_search_width(self, width: int | None) -> None:
        self.index.hnsw.efSearch = required_width(width)

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        ids: np.ndarray = self.index.search(query.reshape(1, -1), k)[1][0]
        return ids


class Hnswlib:
    """hnswlib Index, space ``ip``."""

    label = "hnswlib"
    params = "M=16, ef_construction=100"
    search_widths: tuple[int | None, ...] = SEARCH_WIDTHS

    def __init__(self) -> None:
        import hnswlib

        self.index = hnswlib.Index(space="ip", dim=DIM)

    def build(self, base: np.ndarray) -> None:
        self.index.init_index(max_elements=len(base), M=16, ef_construction=100, random_seed=100)
        for start, rows in progress(chunks(base), f"build {self.label}"):
            ids = np.arange(start, start + len(rows))
            self.index.add_items(rows, ids, num_threads=BUILD_THREADS)

    def save(self, stem: Path) -> Path:
        path = stem.with_suffix(".hnswlib")
        self.index.save_index(str(path))
        return path

    def set_search_width(self, width: int | None) -> None:
        self.index.set_ef(required_width(width))

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        ids: np.ndarray = self.index.knn_query(query, k=k, num_threads=1)[0][0]
        return ids


class Usearch:
    """usearch Index, metric ``ip``, f32 storage."""

    label = "usearch"
    params = "connectivity=16, expansion_add=128, f32"
    search_widths: tuple[int | None, ...] = SEARCH_WIDTHS

    def __init__(self) -> None:
        from usearch.index import Index

        self.index = Index(ndim=DIM, metric="ip", dtype="f32", connectivity=16, expansion_add=128)

    def build(self, base: np.ndarray) -> None:
        for start, rows in progress(chunks(base), f"build {self.label}"):
            ids = np.arange(start, start + len(rows), dtype=np.uint64)
            self.index.add(ids, rows, threads=BUILD_THREADS)

    def save(self, stem: Path) -> Path:
        path = stem.with_suffix(".usearch")
        self.index.save(str(path))
        return path

    def set_search_width(self, width: int | None) -> None:
        self.index.expansion_search = required_width(width)  # type: ignore[misc]

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        return self.index.search(query, k, threads=1).keys


class Chroma:
    """Chroma embedded PersistentClient, HNSW space cosine, defaults otherwise."""

    label = "Chroma (PersistentClient)"
    params = "cosine; defaults M=16, ef_construction=100"
    search_widths: tuple[int | None, ...] = (None,)

    def __init__(self, folder: Path) -> None:
        import chromadb
        from chromadb.config import Settings

        shutil.rmtree(folder, ignore_errors=True)
        self.folder = folder
        client = chromadb.PersistentClient(
            path=str(folder), settings=Settings(anonymized_telemetry=False)
        )
        self.collection = client.create_collection(
            "bench",
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
        )

    def build(self, base: np.ndarray) -> None:
        batches = range(0, len(base), CHROMA_BATCH)
        for start in progress(batches, f"insert {self.label}"):
            rows = base[start : start + CHROMA_BATCH]
            ids = [str(i) for i in range(start, start + len(rows))]
            self.collection.add(ids=ids, embeddings=rows)

    def save(self, stem: Path) -> Path:
        return self.folder

    def set_search_width(self, width: int | None) -> None:
        """Chroma keeps its default ef_search=100; the harness does not tune it."""

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        result = self.collection.query(
            query_embeddings=query.reshape(1, -1), n_results=k, include=[]
        )
        return np.array(result["ids"][0], dtype=np.int64)


class SqliteVec:
    """sqlite-vec vec0 virtual table through apsw (exact brute-force KNN)."""

    label = "sqlite-vec (vec0, apsw)"
    params = "float[384], distance_metric=cosine, brute force"
    search_widths: tuple[int | None, ...] = (None,)

    def __init__(self, path: Path) -> None:
        import apsw
        import sqlite_vec

        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
        self.path = path
        self.db = apsw.Connection(str(path))
        self.db.enable_load_extension(True)
        self.db.load_extension(sqlite_vec.loadable_path())
        self.db.execute(
            f"CREATE VIRTUAL TABLE items USING vec0(embedding float[{DIM}] distance_metric=cosine)"
        )

    def build(self, base: np.ndarray) -> None:
        insert = "INSERT INTO items(rowid, embedding) VALUES (?, ?)"
        with self.db:  # one transaction; rowids are 1-based, ids are rowid - 1
            rows = ((i + 1, base[i].tobytes()) for i in range(len(base)))
            self.db.executemany(insert, progress(rows, f"insert {self.label}", total=len(base)))

    def save(self, stem: Path) -> Path:
        return self.path

    def set_search_width(self, width: int | None) -> None:
        """Exact search has no width to tune."""

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        sql = "SELECT rowid FROM items WHERE embedding MATCH ? AND k = ? ORDER BY distance"
        return np.array(
            [r[0] - 1 for r in self.db.execute(sql, (query.tobytes(), k))],
            dtype=np.int64,
        )


def make_peer(name: str, n: int) -> PeerIndex:
    """Fresh, empty peer index by short name."""
    factories: dict[str, Callable[[], PeerIndex]] = {
        "faiss": FaissHnsw,
        "hnswlib": Hnswlib,
        "usearch": Usearch,
        "chroma": lambda: Chroma(work_path("indexes", f"chroma_{n}")),
        "sqlite-vec": lambda: SqliteVec(work_path("indexes", f"sqlite_vec_{n}.db")),
    }
    return factories[name]()


def prepare_dataset(n: int, n_queries: int, k: int) -> float:
    """Generate and cache base vectors and ground truth for ``n`` (run in a child).

    Returns the mean number of distinct source embeddings in a query's true top-k.
    """
    return distinct_sources(ground_truth(load_vectors(n), queries(n_queries), k))


def data_notes(n: int, k: int, sources: float) -> str:
    """How clustered the true neighbours are at this N (copies of one embedding)."""
    if n <= N_POOL:
        return f" All {n:,} base vectors are real embeddings."
    sibling = PERTURB_COSINE**2
    return (
        f" Data: a query's exact top-{k} spans {sources:.1f} distinct real embeddings on average; "
        f"the rest are their perturbed copies, which sit at cosine ~{sibling:.2f} to each other "
        "(tighter than typical real neighbours, median ~0.67), so large N is a harder, "
        "near-duplicate-heavy set for HNSW than real data of that size would be."
    )


def describe_search_width(name: str, width: int | None) -> str:
    """Search-time setting as shown in the table."""
    if width is not None:
        return {"faiss": "efSearch", "hnswlib": "ef", "usearch": "expansion_search"}[
            name
        ] + f"={width}"
    return "ef_search=100 (default)" if name == "chroma" else "exact"


def bench_peer(name: str, n: int, n_queries: int, k: int) -> list[Row]:
    """Build one peer over the first ``n`` vectors and query it at each search width (child)."""
    base, qs = load_vectors(n), queries(n_queries)
    truth = ground_truth(base, qs, k)
    peer = make_peer(name, n)
    rss_before = rss_bytes()
    _, build_s = timed(lambda: peer.build(base))
    ram = rss_bytes() - rss_before
    stored = peer.save(work_path("indexes", f"{name}_{n}"))
    disk = path_bytes(stored)
    common: Row = {"library": peer.label, "N": n, "params": peer.params}
    build: Row = {
        "build s": build_s,
        "vectors/s": n / build_s,
        "index RAM MiB": ram / MIB,
        "disk B/vector": disk / n,
    }
    rows = []
    for width in peer.search_widths:
        peer.set_search_width(width)
        measured = measure_search(lambda q: peer.search(q, k), qs, truth)
        rows.append(
            {
                **common,
                "search": describe_search_width(name, width),
                **measured,
                **build,
            }
        )
    remove(stored)
    return rows


def remove(path: Path) -> None:
    """Delete a saved index file or store folder (they are large and only measured once)."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        for sibling in path.parent.glob(path.name + "*"):
            sibling.unlink()


def bench_peer_isolated(name: str, n: int, cfg: BenchConfig) -> list[Row]:
    """``bench_peer`` in a fresh process; a failure becomes an ``error`` row instead of a crash."""
    print(f"[bench_peers] {name} N={n:,}", file=sys.stderr)
    try:
        return run_isolated(bench_peer, name, n, cfg.n_queries, cfg.k)
    except (BrokenProcessPool, RuntimeError, OSError, ValueError, ImportError) as exc:
        print(f"[bench_peers] {name} N={n:,} failed: {exc!r}", file=sys.stderr)
        return [{"library": name, "N": n, "error": f"{type(exc).__name__}: {exc}"}]


def row_number(row: Row, key: str) -> float:
    """A numeric cell of a result row."""
    value = row[key]
    if not isinstance(value, int | float):
        raise TypeError(f"{key} is not a number: {value!r}")
    return float(value)


def database_peer_notes(rows: list[Row], sizes: tuple[int, ...]) -> str:
    """Why Chroma and sqlite-vec stop at the first size, with the numbers behind it."""
    if len(sizes) < 2:
        return ""
    largest, parts = sizes[-1], []
    for row in rows:
        label, scale = str(row.get("library", "")), largest / row_number(row, "N")
        if label.startswith("Chroma") and "build s" in row:
            minutes = row_number(row, "build s") * scale / 60
            parts.append(f"Chroma's insert alone would take ~{minutes:.0f} min at N={largest:,}")
        if label.startswith("sqlite-vec") and "p50 ms" in row:
            per_query = row_number(row, "p50 ms") * scale
            parts.append(
                f"sqlite-vec scans all vectors (~{per_query:.0f} ms/query at N={largest:,})"
            )
    reason = "; ".join(parts) or "their build or query cost grows linearly"
    return (
        f" Chroma and sqlite-vec were measured at N={sizes[0]:,} only and skipped at "
        f"N={largest:,} (linear estimates from the measured size): {reason}."
    )


def section_notes(cfg: BenchConfig, n: int, rows: list[Row], sizes: tuple[int, ...]) -> str:
    """Settings paragraph for one size's table."""
    text = (
        f"{n:,} base vectors (real all-MiniLM-L6-v2 embeddings, grown by perturbed copies past "
        f"57,113), {cfg.n_queries:,} held-out perturbed queries, k={cfg.k}, recall@{cfg.k} against "
        f"exact inner-product top-{cfg.k}. Build with {BUILD_THREADS} threads where the library "
        "allows (faiss OpenMP, hnswlib num_threads, usearch threads, Chroma's default); queries "
        "one at a time from Python on 1 thread, after 50 untimed warm-up queries. Index RAM = RSS "
        "growth of a fresh process across the build; disk = saved index file (Chroma: persist "
        "folder; sqlite-vec: database file) divided by N. "
        f"Versions: faiss-cpu {package_version('faiss-cpu')}, "
        f"hnswlib {package_version('hnswlib')}, usearch {package_version('usearch')}, "
        f"chromadb {package_version('chromadb')}, "
        f"sqlite-vec {package_version('sqlite-vec')} (apsw {package_version('apsw')})."
    )
    if n == sizes[0]:
        text += database_peer_notes(rows, sizes)
    return text


def run(cfg: BenchConfig) -> list[Section]:
    """Measure every peer at every size; one section per size."""
    sizes = QUICK_SIZES if cfg.quick else FULL_SIZES
    sections = []
    for n in sizes:
        sources = run_isolated(prepare_dataset, n, cfg.n_queries, cfg.k)
        names = HNSW_LIBRARIES + (DATABASE_PEERS if n == sizes[0] else ())
        rows = [row for name in names for row in bench_peer_isolated(name, n, cfg)]
        notes = section_notes(cfg, n, rows, sizes) + data_notes(n, cfg.k, sources)
        sections.append(Section(f"Vector search peers, N={n:,}", notes, rows))
    return sections


if __name__ == "__main__":
    print_sections(run(BenchConfig(quick="--quick" in sys.argv)))
