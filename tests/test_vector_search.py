"""Vector search: exactness, quantization recall, filters that always return k, bad vectors."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import loomdb
from loomdb import DimensionMismatch, IndexSettings, InvalidVector, ModelMismatch, NotFound

from .conftest import unit_vectors


def brute_force(x: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    scores = x @ q
    return sorted(range(len(x)), key=lambda i: (-scores[i], i))[:k]


def fill(db: loomdb.Database, x: np.ndarray, quantization: str = "f32") -> None:
    db.create_space("text", x.shape[1], model="m", quantization=quantization)  # type: ignore[arg-type]
    db.add_nodes([{"id": f"n{i}", "props": {"g": i % 10, "i": i}} for i in range(len(x))],
                 vectors=x)


def test_exact_search_equals_brute_force(db: loomdb.Database) -> None:
    x = unit_vectors(300, 16)
    fill(db, x)
    for q in x[:5]:
        hits = db.vector_search(q, k=7, exact=True)
        assert [h.id for h in hits] == [f"n{i}" for i in brute_force(x, q, 7)]
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


@pytest.mark.parametrize("quantization", ["f32", "f16", "i8", "b1"])
def test_ann_recall_on_real_vectors(quantization: str, minilm_vectors: np.ndarray) -> None:
    x, queries = minilm_vectors[:5000], minilm_vectors[5000:5100]
    with loomdb.open(":memory:") as db:
        fill(db, x, quantization)
        recall = 0.0
        for q in queries:
            found = {h.id for h in db.vector_search(q, k=10)}
            recall += len(found & {f"n{i}" for i in brute_force(x, q, 10)}) / 10
        floor = {"f32": 0.95, "f16": 0.95, "i8": 0.93, "b1": 0.85}[quantization]
        assert recall / len(queries) >= floor
        hit = db.vector_search(queries[0], k=1)[0]  # scores are exact after re-scoring
        assert hit.score == pytest.approx(float(x[int(hit.id[1:])] @ queries[0]), abs=1e-4)


@pytest.mark.parametrize("selectivity", [1, 5, 40, 60])
def test_filtered_search_returns_k_when_k_match(db: loomdb.Database, selectivity: int) -> None:
    x = unit_vectors(3000, 16, seed=selectivity)
    fill(db, x)
    where = {"props.i": {"$lt": len(x) * selectivity // 100}}
    matching = [i for i in range(len(x)) if i < len(x) * selectivity // 100]
    for q in x[-3:]:
        hits = db.vector_search(q, k=10, where=where)
        assert len(hits) == min(10, len(matching))
        assert all(int(h.id[1:]) in matching for h in hits)


def test_broad_filter_uses_index_and_still_returns_k(tmp_path: Path) -> None:
    x = unit_vectors(4000, 16, seed=3)
    settings = IndexSettings(exact_threshold=10)  # force the index path
    with loomdb.open(tmp_path / "s", index=settings) as db:
        fill(db, x)
        for g in range(3):
            hits = db.vector_search(x[g], k=25, where={"props.g": g})
            assert len(hits) == 25 and {h.node.props["g"] for h in hits} == {g}
        assert len(db.vector_search(x[0], k=10, where={"props.i": {"$lt": 3}})) == 3
        assert db.vector_search(x[0], k=10, where={"props.g": 99}) == []


def test_updates_and_deletes_are_seen_by_the_index(db: loomdb.Database) -> None:
    x = unit_vectors(200, 8)
    fill(db, x)
    db.vector_search(x[0], k=1)  # build the index
    db.delete_node("n0")
    db.set_vector("n1", x[2])
    top = db.vector_search(x[0], k=3)
    assert "n0" not in {h.id for h in top}
    assert db.vector_search(x[2], k=2)[1].score == pytest.approx(1.0, abs=1e-5)
    assert db.get_vector("n1").tolist() == pytest.approx(x[2].tolist())


def test_many_deletes_trigger_compaction(db: loomdb.Database) -> None:
    x = unit_vectors(400, 8)
    fill(db, x)
    db.vector_search(x[0], k=1)
    db.delete_nodes([f"n{i}" for i in range(0, 400, 2)])
    hits = db.vector_search(x[1], k=5)
    assert hits[0].id == "n1" and len(hits) == 5
    stats = db.view.stats(db.space(), "default")  # the faiss view rebuilt itself
    assert stats.dead == 0 and stats.size == 200


def test_wrong_dimension_nan_and_model_are_clear_errors(db: loomdb.Database) -> None:
    db.create_space("text", 4, model="minilm")
    db.add_node("a", vector=[1, 0, 0, 0])
    with pytest.raises(DimensionMismatch, match="4-d"):
        db.vector_search([1, 0, 0], k=1)
    with pytest.raises(DimensionMismatch):
        db.set_vector("a", np.zeros((2, 2)))
    with pytest.raises(InvalidVector):
        db.set_vector("a", [np.nan, 0, 0, 0])
    with pytest.raises(InvalidVector):
        db.vector_search([np.inf, 0, 0, 0], k=1)
    with pytest.raises(InvalidVector):
        db.vector_search(["a", "b", "c", "d"], k=1)
    with pytest.raises(ModelMismatch):
        db.set_vector("a", [0, 1, 0, 0], model="openai")
    with pytest.raises(NotFound, match="no vector space"):
        db.vector_search([1, 0, 0, 0], k=1, space="other")
    assert db.get_vector("a").tolist() == [1, 0, 0, 0]


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_metrics(db: loomdb.Database, metric: str) -> None:
    db.create_space("text", 2, metric=metric)  # type: ignore[arg-type]
    db.add_nodes([{"id": "near"}, {"id": "far"}], vectors=[[1, 0.1], [-5, 3]])
    hits = db.vector_search([1, 0], k=2)
    assert [h.id for h in hits] == ["near", "far"] and hits[0].score > hits[1].score
    exact = db.vector_search([1, 0], k=2, exact=True)
    assert [h.score for h in exact] == pytest.approx([h.score for h in hits], abs=1e-5)


def test_float16_storage(db: loomdb.Database) -> None:
    db.create_space("text", 3, storage="float16")
    db.add_node("a", vector=[0.1, 0.2, 0.3])
    assert db.get_vector("a").dtype == np.float16
    assert db.vector_search([0.1, 0.2, 0.3], k=1)[0].id == "a"


def test_chunk_hits_carry_citations(db: loomdb.Database) -> None:
    db.create_space("text", 2)
    db.add_nodes([
        {"id": "c1", "kind": "chunk", "text": "fox",
         "props": {"document": "doc1", "page": 3, "start": 10, "end": 42}},
        {"id": "e1", "kind": "entity", "text": "fox", "props": {"document": "doc1"}},
    ], vectors=[[1, 0], [0.9, 0.1]])
    by_id = {h.id: h for h in db.vector_search([1, 0], k=2)}
    assert by_id["c1"].citation == loomdb.Citation("doc1", 3, 10, 42)
    assert by_id["e1"].citation is None
    assert db.text_search("fox", kind="chunk")[0].citation == loomdb.Citation("doc1", 3, 10, 42)


def test_index_build_racing_a_writer_adds_each_vector_once(file_db: loomdb.Database) -> None:
    file_db.create_space("text", 4)
    file_db.add_nodes([{"id": "a"}], vectors=[[1, 0, 0, 0]])
    space = file_db.space()
    index = file_db.view.build(space, "default")
    stale_seq = index.seq
    file_db.add_nodes([{"id": "b"}], vectors=[[0, 1, 0, 0]])
    index = file_db.view.build(space, "default")  # sees b ...
    index.seq = stale_seq  # ... but as if stamped before b committed, as in the race
    again = file_db.view.get(space, "default")  # catch-up brings b a second time
    assert len(again) == 2 and file_db.check() == []
