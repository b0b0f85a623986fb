"""The ingestion pipeline on real files, the real local models and a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

import loomdb
from loomdb.config import shared_data_dir
from loomdb.errors import NotFound, UnsupportedFormat

pytestmark = pytest.mark.ml

NORMANS = """# The Normans

The Normans were the people who in the 10th and 11th centuries gave their name to Normandy,
a region in France. They were descended from Norse raiders and pirates from Denmark, Iceland
and Norway who, under their leader Rollo, agreed to swear fealty to King Charles III of
West Francia.

## Conquests

William the Conqueror led the Norman conquest of England in 1066. Norman adventurers also
founded the Kingdom of Sicily under Roger II after conquering southern Italy.
"""

QUANTUM = """Quantum computers use qubits, which can hold superpositions of states. IBM and
Google build superconducting quantum processors. Shor's algorithm factors integers in
polynomial time on a quantum computer, which threatens RSA encryption.
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_becomes_a_document_with_cited_chunks_and_entities(
        enriched_db: loomdb.Database, tmp_path: Path) -> None:
    db = enriched_db
    [result] = db.ingest(write(tmp_path, "normans.md", NORMANS))
    assert result.status == "added" and result.chunks >= 1 and result.error is None
    doc = db.get_node(result.document)
    assert doc.kind == "document" and doc.props["title"] == "The Normans"
    chunks = [e.src for e in db.get_edges(dst=doc.id, types=["part_of"])]
    assert len(chunks) == result.chunks
    assert db.jobs(status="queued")  # enrichment waits for the weaver
    assert db.wait_for_enrichment(120)
    for chunk in db.get_nodes(chunks).values():
        cite = loomdb.Hit.of(chunk, 1.0, {}).citation
        assert cite is not None and cite.document == doc.id and cite.page == 1
        assert NORMANS[cite.start:cite.end] == chunk.text  # the span points at the text
        assert db.get_vector(chunk.id).shape == (384,)
    hit = db.vector_search(db.weaver.provider.embed(["Who conquered England?"])[0], k=1,
                           kind="chunk")[0]
    assert "William the Conqueror" in (hit.node.text or "")
    entities = {n.text for c in chunks for n in db.entities_mentioned_in(c)}
    assert {"Normandy", "Rollo", "England"} <= entities
    assert db.get_node(doc.id).props.get("summary")  # summarised in the background


def test_entities_merge_across_documents_and_co_occur(
        enriched_db: loomdb.Database, tmp_path: Path) -> None:
    db = enriched_db
    db.ingest([write(tmp_path, "a.txt", "Alice met Bob in Paris last spring."),
               write(tmp_path, "b.txt", "Later, Alice flew from Paris to Tokyo.")])
    assert db.wait_for_enrichment(120)
    paris = [n for n in db.list_nodes(kind="entity") if n.text == "Paris"]
    assert len(paris) == 1  # one node for both documents
    mentions = db.get_edges(dst=paris[0].id, types=["mentions"])
    assert len(mentions) == 2
    alice = next(n for n in db.list_nodes(kind="entity") if n.text == "Alice")
    pair = db.get_edges(src=min(alice.id, paris[0].id), dst=max(alice.id, paris[0].id),
                        types=["co_occurs"])
    assert pair and pair[0].weight == 2.0  # both passages name Alice and Paris


def test_an_unchanged_file_is_skipped_and_a_changed_one_keeps_its_unchanged_chunks(
        enriched_db: loomdb.Database, tmp_path: Path) -> None:
    db = enriched_db
    path = write(tmp_path, "notes.md", NORMANS + "\n\n" + QUANTUM)
    [first] = db.ingest(path)
    db.wait_for_enrichment(120)
    seq = db.seq
    [again] = db.ingest(path)
    assert again.status == "unchanged" and db.seq == seq  # nothing written at all
    path.write_text(NORMANS + "\n\nBananas are berries, botanically speaking, while "
                    "strawberries are not. Bananas grow in Ecuador and the Philippines.\n")
    [changed] = db.ingest(path)
    assert changed.status == "updated" and changed.document == first.document
    assert changed.chunks_removed >= 1 and changed.chunks_added >= 1
    assert changed.chunks_added < changed.chunks  # the Normans chunks stayed, with vectors
    db.wait_for_enrichment(120)
    texts = " ".join(n.text or "" for n in db.list_nodes(kind="chunk"))
    assert "qubits" not in texts and "Bananas" in texts
    names = {n.text for n in db.list_nodes(kind="entity")}
    assert "IBM" not in names and "Ecuador" in names  # IBM was only in the removed chunk
    chain = db.get_edges(types=["next"])
    assert len(chain) == changed.chunks - 1


def test_deleting_a_document_removes_what_only_it_supported(
        enriched_db: loomdb.Database, tmp_path: Path) -> None:
    db = enriched_db
    [a, b] = db.ingest([write(tmp_path, "a.txt", "Alice met Bob in Paris."),
                        write(tmp_path, "b.txt", "Carol visited Paris with Dave.")])
    db.wait_for_enrichment(120)
    assert db.delete_document(a.document) >= 1
    names = {n.text for n in db.list_nodes(kind="entity")}
    assert "Paris" in names and "Carol" in names
    assert "Alice" not in names and "Bob" not in names
    assert not db.has_node(a.document) and db.has_node(b.document)
    db.wait_for_enrichment(120)
    paris = next(n for n in db.list_nodes(kind="entity") if n.text == "Paris")
    partners = {e.src if e.dst == paris.id else e.dst
                for e in db.get_edges(src=paris.id, types=["co_occurs"])
                + db.get_edges(dst=paris.id, types=["co_occurs"])}
    assert all("Alice" not in p and "Bob" not in p for p in partners)
    with pytest.raises(NotFound):
        db.delete_document(a.document)


def test_text_ingest_is_idempotent_by_content(enriched_db: loomdb.Database) -> None:
    first = enriched_db.ingest(text=QUANTUM, title="Quantum")[0]
    second = enriched_db.ingest(text=QUANTUM, title="Quantum")[0]
    assert first.document == second.document and second.status == "updated"
    assert enriched_db.count(kind="document") == 1


def test_per_file_errors_are_reported_not_fatal(
        enriched_db: loomdb.Database, tmp_path: Path) -> None:
    bad = tmp_path / "data.xyz"
    bad.write_bytes(b"\x00\x01 not a document")
    fake_pdf = tmp_path / "broken.pdf"
    fake_pdf.write_bytes(b"%PDF-1.7\n garbage")
    good = write(tmp_path, "ok.txt", "Alice met Bob in Paris.")
    results = enriched_db.ingest([bad, fake_pdf, good, tmp_path / "missing.txt"])
    by_name = {Path(r.source).name: r for r in results}
    assert isinstance(by_name["data.xyz"].error, UnsupportedFormat)
    assert by_name["broken.pdf"].status == "failed" and by_name["broken.pdf"].error.code
    assert isinstance(by_name["missing.txt"].error, NotFound)
    assert by_name["ok.txt"].status == "added"
    assert enriched_db.count(kind="document") == 1 and enriched_db.check() == []
    with pytest.raises(UnsupportedFormat):
        enriched_db.ingest(bad, strict=True)


def test_a_real_pdf_gives_chunks_citing_their_pages(enriched_db: loomdb.Database) -> None:
    pdf = shared_data_dir() / "pdfs" / "pypdf_samples" / "pdflatex-4-pages.pdf"
    if not pdf.exists():
        pytest.skip(f"shared data not found at {pdf}")
    [result] = enriched_db.ingest(pdf)
    assert result.status == "added" and result.pages > 1
    pages = {n.props["page"] for n in enriched_db.list_nodes(kind="chunk", limit=10_000)}
    assert len(pages) > 1 and min(pages) >= 1 and max(pages) <= result.pages


def test_bad_calls_are_refused_with_codes(enriched_db: loomdb.Database) -> None:
    db = enriched_db
    seq = db.seq
    for call in (lambda: db.ingest(123), lambda: db.ingest([b"bytes"]),  # type: ignore[list-item]
                 lambda: db.ingest(), lambda: db.ingest(text=42),  # type: ignore[arg-type]
                 lambda: db.jobs(status="weird"), lambda: db.enrich(["x"], tasks=["dance"])):
        with pytest.raises(loomdb.InvalidInput):
            call()
    with pytest.raises(NotFound):
        db.enrich(["missing"])
    with pytest.raises(NotFound):
        db.delete_document("doc:missing")
    assert db.seq == seq
