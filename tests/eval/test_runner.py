"""evaluate() end to end on real stores: BM25 on hand-made chunks (no model), then every
default strategy on ingested text with the real local models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import loomdb
from loomdb.errors import InvalidInput
from loomdb.eval import EvalStrategy, parse_golden
from loomdb.eval.golden import GoldenQuery

TOPICS = {
    "radium": "Marie Curie discovered radium and polonium in Paris",
    "dna": "Rosalind Franklin photographed the DNA double helix with X-rays",
    "penicillin": "Alexander Fleming found penicillin growing on a mould in London",
    "relativity": "Albert Einstein published special relativity in Bern",
}


@pytest.fixture
def words_db(tmp_path: Path) -> Iterator[loomdb.Database]:
    """Two chunks per topic (pages 1 and 2 of document ``<topic>.pdf``), an entity, notes."""
    db = loomdb.open(tmp_path / "words", ml=None, weaver=False)
    nodes = [{"id": f"{topic}-{page}", "kind": "chunk", "text": f"{text} (part {page})",
              "props": {"document": f"{topic}.pdf", "page": page}}
             for topic, text in TOPICS.items() for page in (1, 2)]
    nodes.append({"id": "curie", "kind": "entity", "text": "Marie Curie radium radium"})
    # notes on other subjects, so that no topic word is in over 20% of the texts (full-text
    # queries leave such common words out)
    nodes += [{"id": f"note-{i}", "kind": "note", "text": f"an unrelated note number {i}"}
              for i in range(8)]
    db.add_nodes(nodes)
    yield db
    db.close()


def golden(*items: dict[str, object]) -> list[GoldenQuery]:
    import json

    return parse_golden([json.dumps(item) for item in items])


def test_scores_by_gold_ids_match_the_ranking(words_db: loomdb.Database) -> None:
    queries = golden({"query": "radium polonium", "gold_ids": ["radium-2", "nowhere"]},
                     {"query": "penicillin mould", "gold_ids": {"penicillin-1": 2, "dna-1": 0}},
                     {"query": "DNA double helix", "gold_ids": ["dna-1", "dna-2"]})
    report = words_db.evaluate(queries, ["bm25"], k=3)
    bm25 = report["bm25"]
    ranked = [h.id for h in words_db.text_search("radium polonium", 3, kind="chunk")]
    first = bm25.outcomes[0]
    assert first.ranked == tuple(ranked) and "curie" not in first.ranked  # kind chunk
    assert first.recall == 0.5  # radium-2 found, "nowhere" is not in the store
    assert first.reciprocal_rank == 1 / (ranked.index("radium-2") + 1)
    assert first.cited is False  # the top hit cites page 1 of radium.pdf; radium-2 is page 2
    assert bm25.outcomes[2].cited is True and bm25.outcomes[2].ndcg == 1.0
    assert report.missing_gold == ("nowhere",)
    assert bm25.plans == {"lexical-only": 3}
    assert set(bm25.metrics) == {"recall@3", "mrr", "ndcg@10", "citation_accuracy"}
    assert set(bm25.latency_ms) == {"p50", "p95", "p99"}
    assert report.to_dict()["strategies"][0]["queries"] == 3


def test_gold_documents_count_once_and_pages_matter(words_db: loomdb.Database) -> None:
    queries = golden(
        {"query": "radium Curie Paris", "gold": [{"document": "radium.pdf"}]},
        {"query": "radium Curie Paris", "gold": [{"document": "radium.pdf", "page": 9}]},
        {"query": "Einstein relativity", "gold": [{"document": "relativity.pdf", "page": 1},
                                                   {"document": "relativity.pdf", "page": 2}]},
    )
    whole, wrong_page, both_pages = words_db.evaluate(queries, ["bm25"], k=4)["bm25"].outcomes
    assert whole.recall == 1.0 and whole.ndcg == 1.0  # two chunks of radium.pdf, counted once
    assert (wrong_page.recall, wrong_page.cited, wrong_page.reciprocal_rank) == (0.0, False, 0)
    assert both_pages.recall == 1.0 and both_pages.ndcg == pytest.approx(1.0)


def test_kind_comes_from_the_query_or_the_default(words_db: loomdb.Database) -> None:
    queries = golden({"query": "Marie Curie radium", "gold_ids": ["curie"], "kind": "entity"},
                     {"query": "Marie Curie radium", "gold_ids": ["curie"]},
                     {"query": "Marie Curie radium", "gold_ids": ["curie"], "kind": "*"})
    entity, chunk, anything = words_db.evaluate(queries, ["bm25"], k=5)["bm25"].outcomes
    assert entity.ranked == ("curie",) and entity.cited is None  # an entity cites nothing
    assert "curie" not in chunk.ranked and chunk.recall == 0.0
    assert anything.ranked[0] == "curie"
    assert words_db.evaluate(queries[1:2], ["bm25"], kind="*")["bm25"].outcomes[0].recall == 1


def test_where_filters_and_hostile_queries_stay_data(words_db: loomdb.Database) -> None:
    queries = golden(
        {"query": "radium Curie", "gold_ids": ["radium-1"], "where": {"props.page": 2}},
        {"query": '" OR 1=1; DROP TABLE nodes; -- NEAR(radium) *', "gold_ids": ["radium-1"]},
    )
    filtered, hostile = words_db.evaluate(queries, ["bm25"])["bm25"].outcomes
    assert filtered.ranked and all(i.endswith("-2") for i in filtered.ranked)
    assert hostile.ranked[:2] in (("radium-1", "radium-2"), ("radium-2", "radium-1"))
    assert words_db.count() == 17


def test_progress_custom_strategies_and_bad_arguments(words_db: loomdb.Database) -> None:
    queries = golden({"query": "DNA helix", "gold_ids": ["dna-1"]},
                     {"query": "Fleming mould", "gold_ids": ["penicillin-1"]})
    seen: list[tuple[str, int, int]] = []
    shallow = EvalStrategy("bm25-depth-1", {"semantic": False, "strategy": "lexical-only"},
                           depth=1)
    report = words_db.evaluate(queries, ["bm25", shallow], k=5,
                      progress=lambda *args: seen.append(args))
    assert seen == [("bm25", 1, 2), ("bm25", 2, 2), ("bm25-depth-1", 1, 2),
                    ("bm25-depth-1", 2, 2)]
    assert all(len(o.ranked) == 1 for o in report["bm25-depth-1"].outcomes)
    with pytest.raises(InvalidInput, match="unknown strategy"):
        words_db.evaluate(queries, ["telepathy"])
    with pytest.raises(InvalidInput, match="k must be"):
        words_db.evaluate(queries, ["bm25"], k=0)
    with pytest.raises(InvalidInput, match="set per query"):
        EvalStrategy("mine", {"k": 3})


PASSAGES = {
    "curie": ["Marie Curie was a physicist and chemist born in Warsaw.",
              "With Pierre Curie she discovered polonium and radium in 1898.",
              "She won the Nobel Prize in Physics in 1903 and in Chemistry in 1911."],
    "franklin": ["Rosalind Franklin was an English chemist and X-ray crystallographer.",
                 "Her Photo 51 showed the double helix structure of DNA at King's College.",
                 "She later studied the structure of the tobacco mosaic virus."],
    "fleming": ["Alexander Fleming was a Scottish physician and microbiologist.",
                "In 1928 he noticed mould killing bacteria and named the substance penicillin.",
                "Penicillin became the first widely used antibiotic."],
}
QUESTIONS = [("who found radium and polonium", "curie"),
             ("Nobel prize physics 1903", "curie"),
             ("photograph of the DNA double helix", "franklin"),
             ("crystallography of a plant virus", "franklin"),
             ("the first antibiotic drug", "fleming"),
             ("mould that kills bacteria", "fleming")]


@pytest.mark.ml
def test_every_default_strategy_on_ingested_text(enriched_db: loomdb.Database) -> None:
    for name, sentences in PASSAGES.items():
        enriched_db.ingest(text="\n\n".join(sentences), title=name, id=name)
    assert enriched_db.wait_for_enrichment()
    queries = golden(*({"query": q, "gold": [{"document": d}]} for q, d in QUESTIONS))
    report = enriched_db.evaluate(queries, k=5)
    assert [r.strategy for r in report.strategies] == ["dense", "bm25", "hybrid",
                                                       "hybrid+graph"]
    for name in ("dense", "hybrid", "hybrid+graph"):
        metrics = report[name].metrics
        assert metrics["recall@5"] == 1.0, name
        assert metrics["citation_accuracy"] is not None
        assert metrics["citation_accuracy"] >= 5 / 6, name
        assert metrics["mrr"] is not None and metrics["mrr"] >= 5 / 6, name
    assert report["dense"].plans == {"vector-only": 6}
    assert set(report["hybrid"].plans) <= {"hybrid-parallel", "hybrid-sequential"}
    assert all(r.latency_ms["p50"] > 0 for r in report.strategies)
