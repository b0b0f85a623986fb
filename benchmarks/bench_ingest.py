"""Ingestion and enrichment: real PDFs and real IRC chat through the pipeline and the weaver.

PDFs: every file under ../shared/data/pdfs is ingested into a fresh store (extract, chunk,
write), then the queued enrichment is run task by task so each stage is timed on its own.
Chat: the Ubuntu IRC dev logs become chats with ``next`` and ``reply_to`` edges (from the
annotation files); bulk throughput is measured the same way, and the latency from
``add_message`` to "enriched" (embedded and its entities linked) is measured on a paced
stream with the background weaver running, as an application would see it.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from common import BenchConfig, Row, Section, percentiles, print_sections, shared_data_dir

import loomdb
from loomdb.ingest.pipeline import IngestResult
from loomdb.ml.defaults import default_provider

TASK_ORDER = ("embed", "entities", "cooccur", "summarize")
LINE = re.compile(r"^\[(\d\d):(\d\d)\] <([^>]+)> (.*)$")
PACED_RATE = 10.0  # messages per second in the latency run: a busy channel
PACED_COUNT = 300
QUICK_PDFS = 8


def drain_by_task(db: loomdb.Database) -> dict[str, float]:
    """Run the queued jobs one task at a time, in dependency order, timing each task."""
    seconds: dict[str, float] = Counter()
    while db.weaver.pending():
        for task in TASK_ORDER:
            started = time.perf_counter()
            db.weaver.run_until_idle(3600, tasks=[task])
            seconds[task] += time.perf_counter() - started
    return dict(seconds)


def share_rows(label: str, stages: dict[str, float]) -> list[Row]:
    total = sum(stages.values()) or 1.0
    return [{"workload": label, "stage": stage, "seconds": round(value, 2),
             "share %": round(100 * value / total, 1)} for stage, value in stages.items()]


# -- PDFs -----------------------------------------------------------------------------------

def pdf_files(quick: bool) -> list[Path]:
    files = sorted((shared_data_dir() / "pdfs").rglob("*.pdf"))
    return files[:QUICK_PDFS] if quick else files


def ingest_pdfs(cfg: BenchConfig, provider: loomdb.ml.bridge.MLProvider) -> list[Section]:
    store = cfg.work_dir / "ingest-pdfs"
    _reset(store)
    files = pdf_files(cfg.quick)
    with loomdb.open(store, ml=provider, weaver=False) as db:
        started = time.perf_counter()
        results = db.ingest(files)
        ingest_seconds = time.perf_counter() - started
        enrich = drain_by_task(db)
        chunks = db.count(kind="chunk")
        entities = db.count(kind="entity")
    stages = _sum_stages(results)
    ok = [r for r in results if r.status == "added"]
    pages = sum(r.pages for r in ok)
    totals: Row = {
        "files": len(files), "ingested": len(ok), "failed": len(results) - len(ok),
        "pages": pages, "chunks": chunks, "entities": entities,
        "ingest s": round(ingest_seconds, 1), "pages/s (ingest)": round(pages / ingest_seconds, 1),
        "enrich s": round(sum(enrich.values()), 1),
        "chunks/s (ingest+enrich)": round(chunks / (ingest_seconds + sum(enrich.values())), 1),
    }
    outcomes = Counter(r.error.code if r.error else r.status for r in results)
    notes = (f"{len(files)} real PDFs of every awkward kind (../shared/data/pdfs). Ingest = "
             "hash + extract (subprocess) + semantic chunking (sentence embeddings) + one write "
             "transaction per file; enrichment = the weaver's jobs run task by task. Outcomes: "
             + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) + ".")
    return [Section("PDF ingestion throughput", notes, [totals]),
            Section("PDF ingestion: share of time per stage", "Seconds summed over all files.",
                    share_rows("pdfs", {**stages, **enrich}))]


def _sum_stages(results: list[IngestResult]) -> dict[str, float]:
    stages: dict[str, float] = Counter()
    for result in results:
        for stage, seconds in result.stages.items():
            stages[stage] += seconds
    return dict(stages)


def _reset(store: Path) -> None:
    import shutil

    shutil.rmtree(store, ignore_errors=True)


# -- IRC chat -------------------------------------------------------------------------------

def read_log(raw: Path) -> tuple[list[tuple[str, str]], dict[int, int]]:
    """(sender, text) per line, and reply links line -> earlier line from the annotation."""
    messages = []
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        match = LINE.match(line)
        sender, text = (match.group(3), match.group(4)) if match else ("system", line)
        messages.append((sender, text.strip() or "(empty)"))
    links: dict[int, int] = {}
    annotation = raw.with_name(raw.name.replace(".raw.txt", ".annotation.txt"))
    for row in annotation.read_text().splitlines():
        parts = row.split()
        if len(parts) >= 2 and int(parts[0]) < int(parts[1]):
            links[int(parts[1])] = int(parts[0])
    return messages, links


def irc_logs(quick: bool) -> list[Path]:
    logs = sorted((shared_data_dir() / "irc_ubuntu" / "dev").glob("*.raw.txt"))
    return logs[:1] if quick else logs


def add_log(db: loomdb.Database, raw: Path, limit: int | None = None) -> int:
    messages, links = read_log(raw)
    chat = db.create_chat(raw.stem, topic="ubuntu")
    for index, (sender, text) in enumerate(messages[:limit]):
        reply = links.get(index)
        db.add_message(chat.id, sender, text, id=f"{raw.stem}:{index}",
                       reply_to=f"{raw.stem}:{reply}" if reply is not None else None)
    return len(messages[:limit])


def ingest_chat(cfg: BenchConfig, provider: loomdb.ml.bridge.MLProvider) -> list[Section]:
    store = cfg.work_dir / "ingest-chat"
    _reset(store)
    limit = 300 if cfg.quick else None
    with loomdb.open(store, ml=provider, weaver=False) as db:
        started = time.perf_counter()
        count = sum(add_log(db, raw, limit) for raw in irc_logs(cfg.quick))
        add_seconds = time.perf_counter() - started
        enrich = drain_by_task(db)
        gated = db.count(where={"props.duplicate_of": {"$exists": True}})
        entities = db.count(kind="entity")
    row: Row = {
        "messages": count, "add_message/s": round(count / add_seconds, 1),
        "enrich s": round(sum(enrich.values()), 1),
        "messages/s (add+enrich)": round(count / (add_seconds + sum(enrich.values())), 1),
        "repeats gated": gated, "entities": entities,
    }
    notes = ("The 10 Ubuntu IRC dev logs (12,500 real messages; 2,607 annotated reply links "
             "become reply_to edges). add_message commits each message with its next/reply_to "
             "edges and queued jobs (durability=full); enrichment then runs task by task.")
    return [Section("Chat ingestion throughput", notes, [row]),
            Section("Chat ingestion: share of time per stage", "Seconds over all messages.",
                    share_rows("irc", {"add_message": add_seconds, **enrich})),
            latency_section(cfg, provider)]


def latency_section(cfg: BenchConfig, provider: loomdb.ml.bridge.MLProvider) -> Section:
    """add_message -> enriched, with the background weaver, on a paced stream."""
    store = cfg.work_dir / "ingest-latency"
    _reset(store)
    raw = irc_logs(cfg.quick)[-1]
    messages, _links = read_log(raw)
    count = 60 if cfg.quick else PACED_COUNT
    added: dict[str, float] = {}
    enriched: dict[str, float] = {}
    done = threading.Event()
    with loomdb.open(store, ml=provider) as db:
        chat = db.create_chat("paced", topic="ubuntu")
        watcher = threading.Thread(target=_watch, args=(db, added, enriched, done))
        watcher.start()
        for index, (sender, text) in enumerate(messages[:count]):
            node = db.add_message(chat.id, sender, text, id=f"m{index}")
            added[node.id] = time.perf_counter()
            time.sleep(1.0 / PACED_RATE)
        db.wait_for_enrichment(600)
        done.set()
        watcher.join()
    latencies = [enriched[m] - added[m] for m in added if m in enriched]
    row: Row = {"messages": count, "rate msg/s": PACED_RATE, "enriched": len(latencies),
                **percentiles(latencies)}
    notes = (f"{count} real IRC messages sent at {PACED_RATE:g}/s with the background weaver at "
             "the normal activity level. 'Enriched' = the message's jobs are done: its vector is "
             "stored (or it was gated as a repeat) and its entities are linked. Polled every "
             "20 ms, so latencies are accurate to about 20 ms.")
    return Section("Chat enrichment latency: add_message to enriched", notes, [row])


def _watch(db: loomdb.Database, added: dict[str, float], enriched: dict[str, float],
           done: threading.Event) -> None:
    while not done.is_set() or len(enriched) < len(added):
        for node_id in [m for m in list(added) if m not in enriched]:
            if not db.backend.list_jobs(db.tenant_name, node_id, None, 1):
                enriched[node_id] = time.perf_counter()
        time.sleep(0.02)


def run(cfg: BenchConfig) -> list[Section]:
    provider = default_provider()
    provider.embed(["warm up"])  # model load is not ingestion time
    provider.extract_entities("Warm up in Paris")
    return ingest_pdfs(cfg, provider) + ingest_chat(cfg, provider)


if __name__ == "__main__":
    print_sections(run(BenchConfig(quick="--quick" in sys.argv)))
