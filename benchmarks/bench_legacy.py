"""Legacy JSON files vs a loomdb store: saving and loading concepts with 384-d embeddings.

The legacy system kept ``concepts.json``, ``associations.json`` and ``embeddings.json`` and
rewrote them whole with ``json.dump(indent=2)``; loading parsed them whole and turned each
embedding into a numpy array. loomdb writes the same data once into a file store (bulk insert,
then ``close``, which also builds and saves the vector index) and reads it back after a fresh
open. A second table times the migration itself: ``import_legacy`` and ``export_legacy``.
Each measurement runs in its own spawned process, so its peak RAM is its own.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    MIB,
    BenchConfig,
    Row,
    Section,
    load_vectors,
    path_bytes,
    peak_rss_bytes,
    print_sections,
    run_isolated,
    shared_data_dir,
    timed,
    work_path,
)

import loomdb
from loomdb.interchange import export_legacy, import_legacy

FULL_N, QUICK_N = 100_000, 10_000
MIGRATION_FULL_N, MIGRATION_QUICK_N = 10_000, 2_000
TEXT_FILE = "vectors/minilm_l6_v2_texts.json"
PROVIDER = "sentence-transformers/all-MiniLM-L6-v2"
FILES = ("concepts.json", "associations.json", "embeddings.json")
BATCH = 10_000
STORAGE = "float64"  # what import_legacy creates; loomdb's default float32 halves vector bytes
EPOCH = 1_700_000_000.0
Documents = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


# --------------------------------------------------------------------------- the data set


def concept_id(i: int) -> str:
    return f"concept-{i}"


def association_targets(n: int) -> np.ndarray:
    """One association per concept, to a concept far away in the id space."""
    return (np.arange(n, dtype=np.int64) * 7_919 + 1) % n


def legacy_documents(n: int) -> Documents:
    """The three legacy files' contents as the legacy system held them: real texts and real
    MiniLM vectors (grown past 57k by perturbed copies), float32 values as Python floats."""
    texts = json.loads((shared_data_dir() / TEXT_FILE).read_text())
    vectors, targets = load_vectors(n), association_targets(n)
    concepts, associations, embeddings = {}, {}, {}
    for i in range(n):
        cid, text = concept_id(i), texts[i % len(texts)]
        concepts[cid] = {
            "id": cid,
            "content": text["text"],
            "created": EPOCH + i,
            "access_count": i % 7,
            "strength": 1.0,
            "last_accessed": EPOCH + i,
            "source": text["source"],
            "category": None,
            "confidence": 1.0,
        }
        dst = concept_id(int(targets[i]))
        associations[f"{cid}:{dst}"] = {
            "source_id": cid,
            "target_id": dst,
            "assoc_type": "semantic",
            "weight": 1.0,
            "confidence": 1.0,
            "created": EPOCH + i,
            "last_used": EPOCH + i,
        }
        embeddings[cid] = vectors[i].tolist()
    return (
        concepts,
        associations,
        {"provider": PROVIDER, "embeddings": embeddings, "vocabulary": {}},
    )


def save_legacy(directory: Path, documents: Documents) -> None:
    """What the legacy storage's ``save`` did: each file rewritten with json.dump(indent=2)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, document in zip(FILES, documents, strict=True):
        with (directory / name).open("w") as file:
            json.dump(document, file, indent=2)


def fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    return path


# --------------------------------------------------------------------------- measurements


def measure_legacy_save(n: int) -> Row:
    directory = fresh(work_path("legacy", f"json_{n}"))
    documents = legacy_documents(n)
    _, seconds = timed(lambda: save_legacy(directory, documents))
    return {
        "save s": seconds,
        "of which index build s": None,
        "disk MiB": path_bytes(directory) / MIB,
        "of which index MiB": None,
    }


def measure_legacy_load(n: int) -> Row:
    """What the legacy storage's ``load`` did: parse each file, one np.array per embedding."""
    directory = work_path("legacy", f"json_{n}")

    def load() -> int:
        loaded = [json.loads((directory / name).read_text()) for name in FILES]
        arrays = {cid: np.array(e) for cid, e in loaded[2]["embeddings"].items()}
        return len(loaded[0]) + len(loaded[1]) + len(arrays)

    _, seconds = timed(load)
    return {"load s": seconds, "load peak RSS MiB": peak_rss_bytes() / MIB}


def loomdb_batches(n: int) -> list[tuple[list[dict[str, Any]], np.ndarray, list[dict[str, Any]]]]:
    """Nodes, their vectors and edges in insert batches: the same data as the legacy files."""
    texts = json.loads((shared_data_dir() / TEXT_FILE).read_text())
    vectors, targets = load_vectors(n), association_targets(n)
    batches = []
    for start in range(0, n, BATCH):
        rows = range(start, min(n, start + BATCH))
        nodes = [
            {
                "id": concept_id(i),
                "text": texts[i % len(texts)]["text"],
                "source": texts[i % len(texts)]["source"],
                "created": EPOCH + i,
                "access_count": i % 7,
                "strength": 1.0,
                "last_accessed": EPOCH + i,
                "confidence": 1.0,
            }
            for i in rows
        ]
        edges = [
            {
                "src": concept_id(i),
                "dst": concept_id(int(targets[i])),
                "type": "semantic",
                "confidence": 1.0,
                "created": EPOCH + i,
                "last_used": EPOCH + i,
            }
            for i in rows
        ]
        batches.append((nodes, vectors[start : start + BATCH], edges))
    return batches


def measure_loomdb_save(n: int, storage: str) -> Row:
    path = fresh(work_path("legacy", f"loomdb_{storage}_{n}"))
    batches = loomdb_batches(n)

    def insert() -> loomdb.Database:
        db = loomdb.open(path)
        db.create_space("text", 384, model=PROVIDER, storage=storage)
        for nodes, vectors, _ in batches:
            db.add_nodes(nodes, vectors=vectors)
        for _, _, edges in batches:
            db.add_edges(edges)
        return db

    db, insert_s = timed(insert)
    _, close_s = timed(db.close)
    return {
        "save s": insert_s + close_s,
        "of which index build s": close_s,
        "disk MiB": path_bytes(path) / MIB,
        "of which index MiB": path_bytes(path / "index") / MIB,
    }


def read_all(db: loomdb.Database) -> int:
    """Every node, edge and stored vector (in its stored precision) of the store."""
    total = 0
    for offset in range(0, db.count() + 1, 100_000):
        ids = [node.id for node in db.list_nodes(limit=100_000, offset=offset)]
        for start in range(0, len(ids), BATCH):
            total += len(db.backend.get_vectors(db.tenant_name, "text", ids[start : start + BATCH]))
        total += len(ids)
    return total + len(db.backend.get_edges(db.tenant_name, limit=2**62))


def measure_loomdb_load(n: int, storage: str) -> Row:
    path = work_path("legacy", f"loomdb_{storage}_{n}")

    def load() -> int:
        with loomdb.open(path) as db:
            return read_all(db)

    count, seconds = timed(load)
    assert count == 3 * n, count
    return {"load s": seconds, "load peak RSS MiB": peak_rss_bytes() / MIB}


def measure_migration(n: int) -> Row:
    """import_legacy into a fresh store and export_legacy back; the files must match."""
    source = fresh(work_path("legacy", f"migrate_in_{n}"))
    save_legacy(source, legacy_documents(n))
    store = fresh(work_path("legacy", f"migrate_store_{n}"))
    target = work_path("legacy", f"migrate_out_{n}")
    db = loomdb.open(store)
    _, import_s = timed(lambda: import_legacy(db, source))
    _, close_s = timed(db.close)
    with loomdb.open(store) as db:
        _, export_s = timed(lambda: export_legacy(db, fresh(target)))
    same = all((source / f).read_bytes() == (target / f).read_bytes() for f in FILES)
    return {
        "N": n,
        "import_legacy s": import_s,
        "close s": close_s,
        "export_legacy s": export_s,
        "files byte-identical": "yes" if same else "NO",
    }


# --------------------------------------------------------------------------- report


def isolated(fn: Callable[..., Row], *args: object) -> Row:
    try:
        return run_isolated(fn, *args)
    except Exception as exc:  # a failed measurement is a row, run_all reports it
        return {"error": f"{type(exc).__name__}: {exc}"}


def save_load_rows(n: int) -> list[Row]:
    legacy = {
        "system": "legacy JSON (json.dump indent=2)",
        "N": n,
        **isolated(measure_legacy_save, n),
        **isolated(measure_legacy_load, n),
    }
    store = {
        "system": f"loomdb file store, {STORAGE} vectors",
        "N": n,
        **isolated(measure_loomdb_save, n, STORAGE),
        **isolated(measure_loomdb_load, n, STORAGE),
    }
    return [legacy, store]


def run(cfg: BenchConfig) -> list[Section]:
    """Save/load at one size, then the migration at a smaller one."""
    n = QUICK_N if cfg.quick else FULL_N
    migration_n = MIGRATION_QUICK_N if cfg.quick else MIGRATION_FULL_N
    notes = (
        f"{n:,} concepts (real texts), {n:,} associations and {n:,} real all-MiniLM-L6-v2 "
        "embeddings (384-d, grown past 57,113 by perturbed copies). Legacy save: the three files "
        "written with json.dump(indent=2) as the legacy system did; legacy load: json.load of "
        "each plus one np.array per embedding. loomdb save: open a new file store, bulk "
        f"add_nodes (with vectors) and add_edges in batches of {BATCH:,}, then close — which "
        "builds and saves the HNSW index, shown separately. loomdb load: open and read every "
        "node, edge and vector back. Vectors are stored as float64, as import_legacy does, so "
        "every value is kept exactly (loomdb's default float32 halves their bytes). Disk "
        "includes the index. Each cell is one run in a fresh process (durability=full)."
    )
    migration_notes = (
        f"A legacy directory of {migration_n:,} concepts as above: import_legacy into a fresh "
        "store (one transaction), close (index build), export_legacy after reopening. The "
        "exported files are compared byte for byte with the ones imported."
    )
    return [
        Section(f"Legacy JSON vs loomdb, N={n:,}", notes, save_load_rows(n)),
        Section(
            f"Migration with loomdb.interchange, N={migration_n:,}",
            migration_notes,
            [isolated(measure_migration, migration_n)],
        ),
    ]


if __name__ == "__main__":
    print_sections(run(BenchConfig(quick="--quick" in sys.argv)))
