"""Retrieval quality: dense, BM25, hybrid and hybrid + graph on SQuAD and BEIR subsets.

Each data set becomes a store of chunk nodes with MiniLM vectors (embedded with the store's
local provider in batches) and spaCy entities with their co-occurrence edges (the weaver's
``entities`` and ``cooccur`` tasks, which ``hybrid+graph`` walks). A store is built once and
cached under ``benchmarks/.work/eval`` by a hash of its inputs, so reruns only query. The
golden sets are written there as JSONL too, and ``loomdb eval`` reads them as they are.

Every strategy is measured with the default configuration (``loomdb.eval.evaluate``: k=10, no
result cache, default fusion weights and depth); a separate table tries fusion variants.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from common import BenchConfig, Row, Section, print_sections, shared_data_dir, work_path

import loomdb
from loomdb.eval import EvalReport, EvalStrategy, GoldenQuery, read_golden
from loomdb.eval.metrics import gains_of_ids, mean, ndcg_at_k
from loomdb.eval.strategies import DEFAULT_STRATEGIES
from loomdb.ml.bridge import MLProvider
from loomdb.ml.defaults import default_provider
from loomdb.query.fusion import reciprocal_rank_fusion
from loomdb.storage.sqlite.fts import COMMON_SHARE

BUILD_VERSION = 1  # bump when the way stores are built changes
EMBED_BATCH = 64
QUICK_QUERIES = 100
DEEP_K = 100
DEEP_MAX_QUERIES = 1_000  # recall@100 only where a second pass is cheap
VARIANT_QUERIES = 500
QUICK_MAX_BUILD = 1_000  # passages; larger stores are only used in quick mode once built
DEFAULT_DEPTH = 20  # candidates per retriever before fusion at k=10 (the planner's 2x)


@dataclass
class Dataset:
    """Passages (node dicts) and golden sets (name -> JSONL lines) built from shared files."""

    name: str
    source: str
    inputs: list[Path]
    passages: list[dict[str, Any]] = field(default_factory=list)
    golden: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    skipped: str = ""


# -- data sets ------------------------------------------------------------------------------

def spread(items: list[Any], n: int) -> list[Any]:
    """``n`` items (all, if fewer) evenly spaced through ``items``, so a sample covers every
    article."""
    if len(items) <= n:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def squad() -> Dataset:
    """SQuAD 2.0 dev (half): paragraphs as chunks (document = article title); each question
    judged by the paragraph it was written on. Unanswerable questions form their own set."""
    path = shared_data_dir() / "squad_v2_dev_half" / "dev-v2.0.json"
    data = Dataset("squad", "SQuAD 2.0 dev (half)", [path])
    answerable: list[dict[str, Any]] = []
    unanswerable: list[dict[str, Any]] = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for number, paragraph in enumerate(article["paragraphs"]):
            pid = f"{article['title']}#{number}"
            data.passages.append({"id": pid, "kind": "chunk", "text": paragraph["context"],
                                  "props": {"document": article["title"], "position": number}})
            for qa in paragraph["qas"]:
                line = {"id": qa["id"], "query": qa["question"], "gold_ids": [pid]}
                (unanswerable if qa["is_impossible"] else answerable).append(line)
    data.golden = {"answerable": answerable, "unanswerable": spread(unanswerable, 1_000)}
    return data


def beir(name: str) -> Dataset:
    """A BEIR subset: title + text per passage (as BEIR's own runs index them), graded qrels;
    a passage's document is its id up to ``_chunk_`` (the report a chunk belongs to)."""
    folder = shared_data_dir() / "beir" / name
    files = [folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels" / "test.tsv"]
    data = Dataset(name, f"BEIR {name}", files)
    for raw in files[0].read_text(encoding="utf-8").splitlines():
        doc = json.loads(raw)
        text = f"{doc.get('title', '')}\n{doc['text']}".strip()
        data.passages.append({"id": doc["_id"], "kind": "chunk", "text": text,
                              "props": {"document": doc["_id"].split("_chunk_")[0]}})
    qrels: dict[str, dict[str, int]] = {}
    for raw in files[2].read_text(encoding="utf-8").splitlines()[1:]:
        query, corpus_id, grade = raw.split("\t")
        qrels.setdefault(query, {})[corpus_id] = int(grade)
    queries = [json.loads(raw) for raw in files[1].read_text(encoding="utf-8").splitlines()]
    judged = [q for q in queries if any(g > 0 for g in qrels.get(q["_id"], {}).values())]
    data.golden = {"test": [{"id": q["_id"], "query": q["text"], "gold_ids": qrels[q["_id"]]}
                            for q in judged]}
    if len(judged) < len(queries):
        data.skipped = f"{len(queries) - len(judged)} queries without a relevant passage skipped"
    return data


DATASETS: dict[str, Callable[[], Dataset]] = {
    "squad": squad,
    "dbpedia": lambda: beir("dbpedia"),
    "business-reports": lambda: beir("business-reports"),
}


# -- stores ---------------------------------------------------------------------------------

def input_hash(data: Dataset, provider: MLProvider) -> str:
    """Hash of everything a store is built from: the files, the model, the build recipe."""
    digest = hashlib.sha256(f"{BUILD_VERSION}|{provider.model_id}|{data.name}".encode())
    for path in data.inputs:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def batches(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def build_store(data: Dataset, provider: MLProvider, path: Path) -> dict[str, float]:
    """Write the passages with their vectors, then run entity extraction and co-occurrence;
    seconds per stage."""
    seconds: dict[str, float] = {}
    with loomdb.open(path, ml=provider, weaver=False) as db:
        db.create_space("text", provider.dim, model=provider.model_id)
        started = time.perf_counter()
        for batch in batches(data.passages, EMBED_BATCH):
            vectors = provider.embed([p["text"] for p in batch])
            db.add_nodes(batch, vectors=vectors)
        seconds["embed + write s"] = time.perf_counter() - started
        started = time.perf_counter()
        ids = [p["id"] for p in data.passages]
        for start in range(0, len(ids), 1000):
            db.enrich(ids[start:start + 1000], tasks=("entities",))
        db.wait_for_enrichment(timeout=24 * 3600)
        seconds["entities s"] = time.perf_counter() - started
        counts = db.stats()
        seconds["entities"] = counts["nodes"].get("entity", 0)
        seconds["mentions"] = counts["edges"].get("mentions", 0)
        seconds["co_occurs"] = counts["edges"].get("co_occurs", 0)
    return seconds


def store_path(data: Dataset, provider: MLProvider) -> Path:
    return work_path("eval", f"{data.name}-{input_hash(data, provider)}")


def cached_store(data: Dataset, provider: MLProvider) -> tuple[Path, dict[str, Any]]:
    """The data set's store, built now unless a build of the same inputs is cached."""
    path = store_path(data, provider)
    manifest = path / "build.json"
    if manifest.exists():
        return path, {**json.loads(manifest.read_text()), "cached": True}
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    info: dict[str, Any] = {"passages": len(data.passages),
                            **build_store(data, provider, partial / "store")}
    (partial / "build.json").write_text(json.dumps(info))
    partial.rename(path)
    return path, {**info, "cached": False}


def golden_file(data: Dataset, name: str, quick: bool) -> Path:
    """The golden set as JSONL beside the stores (the first few queries in quick mode)."""
    lines = spread(data.golden[name], QUICK_QUERIES) if quick else data.golden[name]
    path = work_path("eval", f"{data.name}-{name}{'-quick' if quick else ''}.jsonl")
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


# -- measuring ------------------------------------------------------------------------------

def report_rows(dataset: str, golden_set: str, report: EvalReport,
                deep: EvalReport | None) -> list[Row]:
    """One row per strategy: quality at k=10 (the default), recall@100 from a k=100 run."""
    rows: list[Row] = []
    for result in report.strategies:
        metrics, latency = result.metrics, result.latency_ms
        rows.append({
            "dataset": dataset, "set": golden_set, "queries": len(result.outcomes),
            "strategy": result.strategy, "nDCG@10": metrics["ndcg@10"],
            "recall@10": metrics["recall@10"],
            "recall@100": None if deep is None else deep[result.strategy].metrics["recall@100"],
            "MRR@10": metrics["mrr"], "citation acc": metrics["citation_accuracy"],
            "p50 ms": latency["p50"], "p95 ms": latency["p95"], "p99 ms": latency["p99"],
            "plan": ", ".join(sorted(result.plans)),
        })
    return rows


def paired_difference(a: list[float], b: list[float], seed: int = 7) -> tuple[float, float]:
    """95% bootstrap interval of mean(a - b) over paired per-query scores."""
    diff = np.asarray(a) - np.asarray(b)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (10_000, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def target_row(dataset: str, report: EvalReport) -> Row:
    """Does hybrid beat both dense and BM25 on nDCG@10? With a paired 95% interval against
    the better of the two, and per-query wins and losses."""
    ndcg = {name: [o.ndcg for o in report[name].outcomes] for name in ("dense", "bm25", "hybrid")}
    means = {name: sum(v) / len(v) for name, v in ndcg.items()}
    best = max(("dense", "bm25"), key=lambda name: means[name])
    low, high = paired_difference(ndcg["hybrid"], ndcg[best])
    pairs = list(zip(ndcg["hybrid"], ndcg[best], strict=True))
    return {"dataset": dataset, "dense": means["dense"], "bm25": means["bm25"],
            "hybrid": means["hybrid"], "best single": best,
            "hybrid − best": means["hybrid"] - means[best],
            "95% CI": f"[{low:+.3f}, {high:+.3f}]",
            "wins/ties/losses": f"{sum(h > s for h, s in pairs)}/{sum(h == s for h, s in pairs)}"
                                f"/{sum(h < s for h, s in pairs)}",
            "target met": "yes" if means["hybrid"] > max(means["dense"], means["bm25"]) else "NO"}


VARIANTS = (
    EvalStrategy("hybrid (default)", {}),
    EvalStrategy("hybrid, lexical weight 0.5", {"weights": {"lexical": 0.5}}),
    EvalStrategy("hybrid, dense weight 0.5", {"weights": {"dense": 0.5}}),
    EvalStrategy("hybrid, depth 100", {}, depth=100),
    EvalStrategy("hybrid, lexical weight 0.5, depth 100", {"weights": {"lexical": 0.5}},
                 depth=100),
    EvalStrategy("hybrid-sequential (full lists)", {"strategy": "hybrid-sequential"}),
    EvalStrategy("hybrid+graph (default)", {"multi_hop": True}),
    EvalStrategy("hybrid+graph, activation 0.1", {"multi_hop": True,
                                                  "weights": {"activation": 0.1}}),
)


def variant_rows(dataset: str, db: loomdb.Database, golden: list[Any]) -> list[Row]:
    """Fusion settings other than the defaults, on the same queries (an investigation, not
    what the default configuration achieves)."""
    report = db.evaluate(golden, VARIANTS, k=10)
    return [{"dataset": dataset, "queries": len(golden), "variant": r.strategy,
             "nDCG@10": r.metrics["ndcg@10"], "recall@10": r.metrics["recall@10"],
             "MRR@10": r.metrics["mrr"], "p50 ms": r.latency_ms["p50"]}
            for r in report.strategies]


PLAIN, PORTER = "unicode61 remove_diacritics 2", "porter unicode61 remove_diacritics 2"
Ranking = list[tuple[str, float]]


class StandaloneBM25:
    """An in-memory FTS5 table of the passages, plus ``others`` (texts of other nodes that
    share the index, as entity names share loomdb's), queried as loomdb queries its own: every
    word quoted and OR-ed, words in over ``COMMON_SHARE`` of the documents left out."""

    def __init__(self, passages: list[dict[str, Any]], tokenizer: str, others: list[str]):
        self.con = sqlite3.connect(":memory:")
        self.con.execute(f"CREATE VIRTUAL TABLE t USING fts5(id UNINDEXED, text, "
                         f"tokenize='{tokenizer}')")
        self.con.executemany("INSERT INTO t VALUES (?, ?)",
                             [(p["id"], p["text"]) for p in passages])
        self.con.executemany("INSERT INTO t VALUES (NULL, ?)", [(text,) for text in others])
        self.documents = len(passages) + len(others)
        self.frequency: dict[str, int] = {}

    def _frequency(self, word: str) -> int:
        if word not in self.frequency:
            row = self.con.execute("SELECT count(*) FROM t WHERE t MATCH ?", (f'"{word}"',))
            self.frequency[word] = int(row.fetchone()[0])
        return self.frequency[word]

    def search(self, text: str) -> Ranking:
        words = list(dict.fromkeys(re.findall(r"\w+", text)))[:64]
        kept = [w for w in words if self._frequency(w) <= COMMON_SHARE * self.documents]
        kept = kept or [min(words, key=self._frequency)]
        rows = self.con.execute("SELECT id, bm25(t) FROM t WHERE t MATCH ? AND id IS NOT NULL "
                                "ORDER BY bm25(t) LIMIT ?",
                                (" OR ".join(f'"{w}"' for w in kept), DEFAULT_DEPTH))
        return [(str(i), -float(score)) for i, score in rows]


def ndcg_of(ranking: Ranking, item: GoldenQuery) -> float:
    ids = [i for i, _ in ranking][:10]
    return ndcg_at_k(gains_of_ids(ids, item.gold_ids), item.grades, 10)


def ranking_of(db: loomdb.Database, item: GoldenQuery, **arguments: Any) -> Ranking:
    return [(h.id, h.score) for h in db.query(text=item.query, kind="chunk", k=DEFAULT_DEPTH,
                                              cache=False, **arguments)]


def bm25_rows(data: Dataset, db: loomdb.Database, golden: list[GoldenQuery]) -> list[Row]:
    """BM25 outside loomdb's index, each fused with loomdb's dense ranking by its RRF (k=60,
    equal weights, 20 candidates each): how much the index's contents and tokenisation
    matter. The first setup mimics loomdb's index, as a check of the emulation."""
    dense = {q.line: ranking_of(db, q, lexical=False, strategy="vector-only") for q in golden}
    loomdb_bm25 = mean(ndcg_of(ranking_of(db, q, semantic=False, strategy="lexical-only"), q)
                       for q in golden)
    names = [n.text or "" for n in db.list_nodes({"kind": "entity"}, limit=100_000)]
    setups = (("passages + entity names (as loomdb's index)", PLAIN, names),
              ("passages only", PLAIN, []),
              ("passages only, Porter stemming", PORTER, []))
    dense_ndcg = mean(ndcg_of(dense[q.line], q) for q in golden) or 0.0
    rows: list[Row] = []
    for label, tokenizer, others in setups:
        index = StandaloneBM25(data.passages, tokenizer, others)
        lexical = {q.line: index.search(q.query) for q in golden}
        bm25 = mean(ndcg_of(lexical[q.line], q) for q in golden) or 0.0
        hybrid = mean(ndcg_of([(f.id, f.score) for f in reciprocal_rank_fusion(
            {"dense": dense[q.line], "lexical": lexical[q.line]})], q) for q in golden) or 0.0
        rows.append({"dataset": data.name, "queries": len(golden), "BM25 index": label,
                     "loomdb BM25": loomdb_bm25, "dense": dense_ndcg, "BM25": bm25,
                     "hybrid (RRF)": hybrid,
                     "hybrid − best single": hybrid - max(dense_ndcg, bm25)})
    return rows


def build_row(data: Dataset, build: dict[str, Any]) -> Row:
    embed_s = float(build["embed + write s"])
    return {"dataset": data.name, "source": data.source, "passages": build["passages"],
            "embed + write s": embed_s, "passages/s": build["passages"] / embed_s,
            "entities s": build["entities s"], "entities": build["entities"],
            "mentions": build["mentions"], "co_occurs": build["co_occurs"],
            "this run": "cached" if build["cached"] else "built"}


@dataclass
class Results:
    quality: list[Row] = field(default_factory=list)
    targets: list[Row] = field(default_factory=list)
    variants: list[Row] = field(default_factory=list)
    bm25: list[Row] = field(default_factory=list)
    builds: list[Row] = field(default_factory=list)


def measure_dataset(data: Dataset, provider: MLProvider, cfg: BenchConfig,
                    results: Results) -> None:
    path, build = cached_store(data, provider)
    results.builds.append(build_row(data, build))
    with loomdb.open(path / "store", ml=provider, weaver=False) as db:  # writable: migrates
        for number, name in enumerate(data.golden):
            golden = read_golden(golden_file(data, name, cfg.quick))
            print(f"  {data.name}/{name}: {len(golden)} queries", file=sys.stderr)
            report = db.evaluate(golden, DEFAULT_STRATEGIES, k=cfg.k)
            main_set = number == 0
            deep = None
            if main_set and len(golden) <= DEEP_MAX_QUERIES:
                deep = db.evaluate(golden, DEFAULT_STRATEGIES, k=DEEP_K)
            results.quality += report_rows(data.name, name, report, deep)
            if main_set:
                results.targets.append(target_row(data.name, report))
                sample = spread(golden, VARIANT_QUERIES)
                results.variants += variant_rows(data.name, db, sample)
                results.bm25 += bm25_rows(data, db, sample)



QUALITY_NOTES = """\
`loomdb.eval.evaluate` with the default configuration: k=10 hits per query, result cache off,
default RRF weights (dense 1, lexical 1, activation 0.5) and candidate depth (the planner's
over-fetch: 2x k per retriever, 3x with multi-hop), kind `chunk`. recall@100 comes from a second
run at k=100 (deeper candidate lists, so its ranking differs), for the sets of at most 1,000
queries. Latency is one query at a time, embedding the query text included (MiniLM on the CPU,
torch limited to one thread: on this shared 2-core machine its default two threads spin against
the other processes, ~15x slower per query under load; see the load average above).

Strategies: `dense` = MiniLM cosine only; `bm25` = FTS5 BM25 only; `hybrid` = both fused by
weighted RRF, plan chosen by the planner; `hybrid+graph` = hybrid plus spreading activation over
the spaCy entity graph (passages sharing entities with the top 10 hits join the fusion).

SQuAD: 646 paragraphs; a question's gold is the paragraph it was written on (document = article
title, so citation accuracy = top hit from the right article). `unanswerable` questions (no
answer in any paragraph) are scored against the paragraph they were written on and reported
apart (an even sample of 1,000 of the 3,168). BEIR: title + text per passage, graded qrels (nDCG
uses the grades; recall and MRR count grade >= 1); queries without a relevant passage are
skipped ({skipped})."""

BUSINESS_CAVEAT = """\
**business-reports: the qrels do not match the queries.** Only 11 of its 50 queries have
judgements, and by title only q_15's judged passages are on its topic; the others are shuffled
between queries (q_12 "Geopolitical risks ... Asian markets" is judged by the chunks of "Global
Banking Annual Review", q_14 "Remanufacturing" by "The SG&A challenge", q_16 "SG&A" by
"Remanufacturing", ...). Its numbers measure agreement with wrong labels, so they are shown but
do not decide the target."""


@contextmanager
def single_threaded_torch() -> Iterator[None]:
    """Torch on one thread while measuring. On this shared 2-core machine the default two
    threads spin against the other processes: one query embedding took ~1,340 ms with two and
    ~90 ms with one at a load average of 7."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run(cfg: BenchConfig) -> list[Section]:
    with single_threaded_torch():
        return measure_all(cfg)


def measure_all(cfg: BenchConfig) -> list[Section]:
    provider = default_provider()
    provider.embed(["warm up"])  # model load is not build or query time
    results = Results()
    skipped: list[str] = []
    for name, make in DATASETS.items():
        data = make()
        if cfg.quick and len(data.passages) > QUICK_MAX_BUILD \
                and not (store_path(data, provider) / "build.json").exists():
            print(f"quick: {name} skipped (its store is not built yet)", file=sys.stderr)
            continue
        if data.skipped:
            skipped.append(f"{name}: {data.skipped}")
        print(f"== {name}", file=sys.stderr)
        measure_dataset(data, provider, cfg, results)
    notes = QUALITY_NOTES.format(skipped="; ".join(skipped) or "none")
    trusted = [r for r in results.targets if r["dataset"] != "business-reports"]
    verdict = "met" if all(r["target met"] == "yes" for r in trusted) else "NOT met"
    return [
        Section("Retrieval quality and latency per strategy", notes + "\n\n" + BUSINESS_CAVEAT,
                results.quality),
        Section(f"Target: hybrid beats dense and BM25 alone on nDCG@10 — {verdict}",
                "Mean nDCG@10 at k=10, default configuration. `95% CI` is a paired bootstrap "
                "interval of hybrid minus the better single retriever over the queries; "
                "wins/ties/losses count queries. The verdict covers SQuAD and dbpedia "
                "(business-reports' labels are broken, see above).", results.targets),
        Section("Fusion variants (investigation, not the defaults)",
                f"The same stores and up to {VARIANT_QUERIES:,} queries of each main set (an "
                "even sample); "
                "`depth` = candidates each retriever hands to fusion (default: 2x k = 20); "
                "`hybrid-sequential` scores every chunk exactly, so fusion sees full rankings; "
                "weights are RRF weights (default 1 each, activation 0.5).", results.variants),
        Section("BM25 experiments: what the lexical index holds and how it tokenises",
                "nDCG@10 from standalone SQLite FTS5 tables (not loomdb's index) over the same "
                "passages and queries as the fusion variants, asked as loomdb asks its own "
                "(every word OR-ed, words in over 20% of the documents left out; `loomdb "
                "BM25` is loomdb's own, to check the first row's emulation). loomdb keeps one "
                "FTS5 index for every node, so after "
                "enrichment it also holds each entity name: short documents that shift IDF and "
                "the average length BM25 normalises by. `hybrid (RRF)` fuses each BM25 ranking "
                "with loomdb's dense ranking (20 candidates each, RRF k=60, equal weights).",
                results.bm25),
        Section("Store builds (cached by a hash of the inputs)",
                "Passages embedded with the local provider (MiniLM, batches of "
                f"{EMBED_BATCH}) and written with their vectors; then spaCy entities and "
                "co-occurrence by the weaver (`entities` + `cooccur` jobs). Times are from the "
                "build, which later runs reuse.", results.builds),
    ]


if __name__ == "__main__":
    print_sections(run(BenchConfig(quick="--quick" in sys.argv)))
