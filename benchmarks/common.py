"""Shared harness for loomdb benchmarks: data sets, timing, memory, isolation, Markdown.

Every benchmark module exposes ``run(cfg: BenchConfig) -> list[Section]``; ``run_all.py`` collects
the sections and renders ``docs/benchmarks.md``. Everything a module needs to measure the same way
as its peers lives here: the vector data set (real MiniLM embeddings grown by perturbation),
held-out queries and exact ground truth, the power-law graph, latency percentiles, RSS readings, and
``run_isolated`` to measure one system per fresh process.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import resource
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import TypeVar

import numpy as np
import psutil
from tqdm import tqdm

T = TypeVar("T")
Row = dict[str, object]

DIM = 384
SEED = 20_240_601
N_ORIGINAL = 58_113
N_HOLDOUT = 1_000
N_POOL = N_ORIGINAL - N_HOLDOUT
PERTURB_COSINE = 0.9
VECTOR_FILE = "vectors/minilm_l6_v2_f16.npy"
GT_BLOCK_ROWS = 65_536
FANOUT_LIMIT = 1_000
MIB = 1024 * 1024

REPO_ROOT = Path(__file__).resolve().parent.parent
WORK_DIR = REPO_ROOT / "benchmarks" / ".work"

TRACKED_PACKAGES = (
    "loomdb",
    "numpy",
    "faiss-cpu",
    "hnswlib",
    "usearch",
    "chromadb",
    "apsw",
    "sqlite-vec",
    "networkx",
    "psutil",
)


@dataclass(frozen=True)
class BenchConfig:
    """Settings shared by all benchmark modules.

    Attributes:
        quick: Small sizes only, for a smoke test of the whole pipeline.
        work_dir: Scratch space (git-ignored) for caches, indexes and stores.
        n_queries: Number of query vectors per vector benchmark.
        k: Neighbours per query.
    """

    quick: bool = False
    work_dir: Path = WORK_DIR
    n_queries: int = 1_000
    k: int = 10


@dataclass
class Section:
    """One titled result table of a benchmark, with a paragraph of settings and notes."""

    title: str
    notes: str
    rows: list[Row] = field(default_factory=list)


# --------------------------------------------------------------------------- paths & machine


def shared_data_dir() -> Path:
    """Folder of the shared third-party data.

    Env ``LOOMDB_SHARED_DATA``, else ``<repo>/../shared/data``.
    """
    return Path(os.environ.get("LOOMDB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def work_path(*parts: str) -> Path:
    """Path under ``benchmarks/.work``, creating its parent folder."""
    path = WORK_DIR.joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def package_version(name: str) -> str:
    """Installed version of a distribution, or ``"not installed"``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    """CPU model name from ``/proc/cpuinfo`` (falls back to ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def os_description() -> str:
    """Distribution name (from ``/etc/os-release``) and kernel."""
    pretty = platform.system()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return f"{pretty}, kernel {platform.release()}"


def load_average() -> float:
    """One-minute load average: how busy the machine was (other processes skew timings)."""
    return os.getloadavg()[0]


def machine_info() -> dict[str, str]:
    """Description of the machine and software the numbers were measured on."""
    info = {
        "Date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": cpu_model(),
        "Cores": f"{psutil.cpu_count(logical=False)} physical / {psutil.cpu_count()} logical",
        "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": os_description(),
        "Python": platform.python_version(),
    }
    info.update({name: package_version(name) for name in TRACKED_PACKAGES})
    return info


# --------------------------------------------------------------------------- timing & memory


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Call ``fn`` once; return its result and the elapsed wall time in seconds."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 of latency samples given in seconds, returned in milliseconds."""
    values = np.asarray(samples, dtype=np.float64) * 1e3
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50 ms": float(p50), "p95 ms": float(p95), "p99 ms": float(p99)}


def rss_bytes() -> int:
    """Current resident set size of this process."""
    return int(psutil.Process().memory_info().rss)


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def path_bytes(path: Path) -> int:
    """Size of a file, or the total size of the files under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_isolated(fn: Callable[..., T], *args: object) -> T:
    """Run ``fn(*args)`` in a fresh spawned process and return its (picklable) result.

    Each measured system gets its own process so RSS deltas are not blurred by memory an earlier
    index left in the allocator, and so everything is freed before the next one is built.
    """
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """tqdm progress bar that stays quiet enough for a log file."""
    yield from tqdm(items, desc=desc, total=total, mininterval=5.0, leave=False)


# --------------------------------------------------------------------------- vectors


def perturb_sigma(cosine: float = PERTURB_COSINE, dim: int = DIM) -> float:
    """Noise scale so that a unit vector plus N(0, sigma^2 I) noise keeps ``cosine`` to itself.

    cos(x, x + n) ~= 1 / sqrt(1 + dim * sigma^2) for a unit x, hence the formula.
    """
    return math.sqrt((1.0 / cosine**2 - 1.0) / dim)


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (in place when ``x`` is float32)."""
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def original_vectors() -> np.ndarray:
    """The 58,113 real all-MiniLM-L6-v2 embeddings as float32, unit length."""
    path = shared_data_dir() / VECTOR_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found; set LOOMDB_SHARED_DATA to the shared data folder"
        )
    stored: np.ndarray = np.load(path)
    return normalize(stored.astype(np.float32))


def split_originals() -> tuple[np.ndarray, np.ndarray]:
    """Deterministic split of original row numbers into (base pool, held-out query sources).

    The pool is shuffled so that any prefix is a random sample of all sources.
    """
    order = np.random.default_rng([SEED, 0]).permutation(N_ORIGINAL)
    return order[N_HOLDOUT:], order[:N_HOLDOUT]


def perturbed(x: np.ndarray, stream: int) -> np.ndarray:
    """Unit-length noisy copies of ``x`` (cosine ~0.9 to their source) from seed ``stream``."""
    rng = np.random.default_rng([SEED, stream])
    noise = rng.standard_normal(x.shape, dtype=np.float32)
    noise *= perturb_sigma()
    noise += x
    return normalize(noise)


def _write_grown_vectors(n: int, path: Path) -> None:
    """Write the first ``n`` base vectors to ``path``: the pool, then perturbed copies of it."""
    pool_rows, _ = split_originals()
    pool = original_vectors()[pool_rows]
    tmp = path.with_suffix(".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, DIM))
    rounds = math.ceil(n / N_POOL)
    for r in progress(range(rounds), f"generating {n:,} vectors", total=rounds):
        start, stop = r * N_POOL, min(n, (r + 1) * N_POOL)
        chunk = pool if r == 0 else perturbed(pool, stream=r)
        out[start:stop] = chunk[: stop - start]
    out.flush()
    del out
    tmp.replace(path)


def load_vectors(n: int) -> np.ndarray:
    """First ``n`` base vectors, float32 (n, 384), unit length, ids = row numbers.

    Rows 0..57,112 are the real embeddings minus the 1,000 held out for queries (shuffled);
    beyond that come rounds of perturbed copies of that pool (round r uses seed stream r), so the
    set for a smaller ``n`` is always a prefix of a larger one. Grown sets are cached as .npy.
    """
    if n <= N_POOL:
        pool_rows, _ = split_originals()
        prefix: np.ndarray = original_vectors()[pool_rows[:n]]
        return prefix
    path = work_path("vectors", f"base_{n}.npy")
    if not path.exists():
        _write_grown_vectors(n, path)
    grown: np.ndarray = np.load(path)
    return grown


def queries(n_q: int = 1_000) -> np.ndarray:
    """Query vectors: perturbed copies of the held-out originals, never in any base set.

    Neither a query's source embedding nor any copy of it is in the base, so the neighbours a
    query finds are genuine semantic neighbours (and their copies), as in real use.
    """
    _, holdout_rows = split_originals()
    held = original_vectors()[holdout_rows]
    rounds = math.ceil(n_q / N_HOLDOUT)
    parts = [perturbed(held, stream=1_000_000 + r) for r in range(rounds)]
    return np.ascontiguousarray(np.concatenate(parts)[:n_q])


def fingerprint(x: np.ndarray) -> str:
    """Short content hash of an array (shape plus a sample of ~1,000 rows) for cache keys."""
    step = max(1, len(x) // 1_000)
    digest = hashlib.sha1(repr(x.shape).encode())
    digest.update(np.ascontiguousarray(x[::step]).tobytes())
    digest.update(np.ascontiguousarray(x[-1:]).tobytes())
    return digest.hexdigest()[:16]


def _exact_top_k(base: np.ndarray, qs: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k ids by inner product, scanning ``base`` in blocks to bound memory."""
    best_ids = np.empty((len(qs), 0), dtype=np.int64)
    best_scores = np.empty((len(qs), 0), dtype=np.float32)
    for start in progress(range(0, len(base), GT_BLOCK_ROWS), "ground truth"):
        scores = qs @ base[start : start + GT_BLOCK_ROWS].T
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_ids = np.hstack([best_ids, top + start])
        best_scores = np.hstack([best_scores, np.take_along_axis(scores, top, axis=1)])
        keep = np.argsort(-best_scores, axis=1, kind="stable")[:, :k]
        best_ids = np.take_along_axis(best_ids, keep, axis=1)
        best_scores = np.take_along_axis(best_scores, keep, axis=1)
    return best_ids


def ground_truth(base: np.ndarray, qs: np.ndarray, k: int = 10) -> np.ndarray:
    """Exact top-k ids (nq, k), best first, by inner product (= cosine on unit vectors); cached."""
    path = work_path("ground_truth", f"gt_{fingerprint(base)}_{fingerprint(qs)}_k{k}.npy")
    if path.exists():
        cached: np.ndarray = np.load(path)
        return cached
    ids = _exact_top_k(base, qs, k)
    np.save(path, ids)
    return ids


def distinct_sources(truth: np.ndarray) -> float:
    """Mean number of distinct source embeddings among each query's true top-k.

    Base id ``i`` is real embedding ``i % N_POOL`` or a perturbed copy of it; a low number means
    the top-k is mostly clusters of copies of the same few embeddings.
    """
    return float(np.mean([len(set(row.tolist())) for row in truth % N_POOL]))


def recall_at_k(found: Sequence[Sequence[int] | np.ndarray], truth: np.ndarray) -> float:
    """Mean fraction of the true top-k ids present in each query's returned ids."""
    k = truth.shape[1]
    hits = sum(
        len(set(map(int, f[:k])) & set(t.tolist())) for f, t in zip(found, truth, strict=True)
    )
    return float(hits / (k * len(truth)))


def measure_search(
    search: Callable[[np.ndarray], Sequence[int] | np.ndarray],
    qs: np.ndarray,
    truth: np.ndarray,
    warmup: int = 50,
) -> Row:
    """Time ``search(query) -> ids`` one query at a time; return latency percentiles and recall.

    The first ``warmup`` queries are run once untimed so caches and lazy setup do not count.
    """
    for q in qs[:warmup]:
        search(q)
    latencies: list[float] = []
    found: list[Sequence[int] | np.ndarray] = []
    for q in progress(qs, "queries"):
        start = time.perf_counter()
        ids = search(q)
        latencies.append(time.perf_counter() - start)
        found.append(ids)
    return {
        **percentiles(latencies),
        f"recall@{truth.shape[1]}": recall_at_k(found, truth),
    }


# --------------------------------------------------------------------------- graphs


def _zipf_sampler(n: int, exponent: float, rng: np.random.Generator) -> Callable[[int], np.ndarray]:
    """Sampler of node ids where the node of popularity rank r has weight ~(r + 1) ** -exponent.

    Inverse-CDF sampling of the continuous density x ** -exponent on [1, n + 1) (exponent < 1),
    floored to a rank: closed form, so 10M draws take well under a second. Ranks are shuffled
    onto ids so that hubs are spread over the id space.
    """
    if not 0 < exponent < 1:
        raise ValueError(f"exponent must be in (0, 1), got {exponent}")
    power = 1.0 - exponent
    span = (n + 1.0) ** power - 1.0
    rank_to_id = rng.permutation(n)

    def sample(size: int) -> np.ndarray:
        x = (1.0 + rng.random(size) * span) ** (1.0 / power)
        ranks = np.minimum(x.astype(np.int64) - 1, n - 1)
        picked: np.ndarray = rank_to_id[ranks]
        return picked

    return sample


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """Distinct values, sorted (sort + neighbour compare; much faster than np.unique on int64)."""
    values = np.sort(values)
    keep = np.empty(len(values), dtype=bool)
    keep[:1] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def _generate_power_law(
    n_nodes: int, n_edges: int, seed: int, out_exp: float = 0.5, in_exp: float = 0.8
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct directed edges, without self loops, with Zipf-like out- and in-degrees."""
    rng = np.random.default_rng(seed)
    sample_src = _zipf_sampler(n_nodes, out_exp, rng)
    sample_dst = _zipf_sampler(n_nodes, in_exp, rng)
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n_edges:
        want = int((n_edges - len(keys)) * 1.1) + 1_000
        src, dst = sample_src(want), sample_dst(want)
        fresh = src.astype(np.int64) * n_nodes + dst
        keys = sorted_unique(np.concatenate([keys, fresh[src != dst]]))
    keys = rng.permutation(keys)[:n_edges]
    return keys // n_nodes, keys % n_nodes


def power_law_graph(n_nodes: int, n_edges: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Directed power-law graph as (src, dst) int64 arrays, deterministic for a seed, cached.

    Sources are drawn with rank exponent 0.5 and targets with 0.8, i.e. heavy-tailed out- and
    in-degrees with different hubs; edges are distinct and there are no self loops.
    """
    stem = f"graph_{n_nodes}_{n_edges}_{seed}"
    src_path, dst_path = (
        work_path("graphs", f"{stem}_src.npy"),
        work_path("graphs", f"{stem}_dst.npy"),
    )
    if src_path.exists() and dst_path.exists():
        src, dst = np.load(src_path), np.load(dst_path)
        return src, dst
    src, dst = _generate_power_law(n_nodes, n_edges, seed)
    np.save(src_path, src)
    np.save(dst_path, dst)
    return src, dst


def edge_weights(n_edges: int, seed: int = SEED) -> np.ndarray:
    """Random edge weights in [1, 10), one per edge, deterministic for a seed."""
    return np.random.default_rng([seed, 1]).uniform(1.0, 10.0, n_edges)


def sample_seed_nodes(n_nodes: int, count: int = 200, seed: int = SEED) -> np.ndarray:
    """Random start nodes for expansion benchmarks (same for every system)."""
    return np.random.default_rng([seed, 2]).integers(0, n_nodes, count)


def sample_node_pairs(n_nodes: int, count: int = 200, seed: int = SEED) -> np.ndarray:
    """Random (source, target) pairs with source != target for path benchmarks, shape (count, 2)."""
    pairs = np.random.default_rng([seed, 3]).integers(0, n_nodes, (count * 2, 2))
    distinct: np.ndarray = pairs[pairs[:, 0] != pairs[:, 1]][:count]
    return distinct


# --------------------------------------------------------------------------- Markdown


def format_value(value: object) -> str:
    """Human-friendly cell text: thousands separators, 3 significant digits for small floats."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value).replace("|", "\\|")
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value) or value == 0:
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def markdown_table(rows: Sequence[Row]) -> str:
    """GitHub Markdown table; columns are the union of row keys in first-seen order."""
    if not rows:
        return "_(no rows)_"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_value(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def markdown_section(section: Section, level: int = 3) -> str:
    """A section as a heading, its notes paragraph and its table."""
    heading = f"{'#' * level} {section.title}"
    return f"{heading}\n\n{section.notes.strip()}\n\n{markdown_table(section.rows)}\n"


def markdown_machine(info: dict[str, str]) -> str:
    """The machine description as a two-column table."""
    return markdown_table([{"": key, "value": value} for key, value in info.items()])


def print_sections(sections: Iterable[Section]) -> None:
    """Print sections as Markdown (for running one benchmark module directly)."""
    for section in sections:
        print(markdown_section(section))
