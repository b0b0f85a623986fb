"""Semantic chunking on real text with the real MiniLM embedder."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest

from loomdb.config import shared_data_dir
from loomdb.errors import InvalidInput
from loomdb.ingest.chunking import ChunkSettings, chunk_pages
from loomdb.ml import MiniLMEmbedder
from loomdb.ml.sentences import MAX_RUN

pytestmark = pytest.mark.ml


@dataclass(frozen=True)
class Page:
    number: int
    text: str
    start: int


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(scope="module")
def squad_articles() -> list[list[str]]:
    path = shared_data_dir() / "squad_v2_dev_half" / "dev-v2.0.json"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    data = json.loads(path.read_text())["data"]
    return [[p["context"] for p in article["paragraphs"][:4]] for article in data[:3]]


def test_chunks_cut_at_topic_changes_within_sizes(
        embedder: MiniLMEmbedder, squad_articles: list[list[str]]) -> None:
    articles = [" ".join(paragraphs) for paragraphs in squad_articles]
    text = " ".join(articles)  # no blank lines: only the meaning tells the topics apart
    settings = ChunkSettings(min_tokens=32, max_tokens=200)
    chunks = chunk_pages([Page(1, text, 0)], embedder, settings)
    assert all(c.tokens <= settings.max_tokens for c in chunks)
    assert all(c.tokens >= settings.min_tokens for c in chunks[:-1])
    assert all(text[c.start:c.end] == c.text for c in chunks)
    boundaries = [len(" ".join(articles[:i + 1])) for i in range(len(articles) - 1)]
    cut_points = [c.end for c in chunks]
    for boundary in boundaries:  # each article change is a cut (within a sentence or two)
        assert min(abs(boundary - cut) for cut in cut_points) < 200


def test_pages_keep_their_numbers_and_document_offsets(embedder: MiniLMEmbedder) -> None:
    pages = [Page(1, "Alice met Bob in Paris. They had coffee.", 0),
             Page(2, "", 42),
             Page(3, "Quantum computers use qubits.", 44)]
    chunks = chunk_pages(pages, embedder)
    assert [(c.page, c.index) for c in chunks] == [(1, 0), (3, 1)]
    assert chunks[1].doc_start == 44 and chunks[1].start == 0


def test_an_overlong_sentence_is_cut_at_words(embedder: MiniLMEmbedder) -> None:
    text = " ".join(f"word{i}" for i in range(2000))  # one "sentence", thousands of tokens
    chunks = chunk_pages([Page(1, text, 0)], embedder, ChunkSettings(max_tokens=128))
    assert len(chunks) > 10 and all(c.tokens <= 128 for c in chunks)
    assert " ".join(c.text for c in chunks) == text


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInput):
        ChunkSettings(min_tokens=300, max_tokens=100)
    with pytest.raises(InvalidInput):
        ChunkSettings(cut_percentile=120)


def test_a_normal_document_chunks_as_before_the_run_limit(
        embedder: MiniLMEmbedder, squad_articles: list[list[str]]) -> None:
    """Prose, a 200-character URL and a table: nothing here is an over-long run, so the
    chunks are the ones chunking gave before runs were cut (recorded from that code)."""
    paragraphs = [p for article in squad_articles[:2] for p in article[:3]]
    extra = ("# Sources\n\nSee https://example.org/" + "a1b2c3d4/" * 20 + "index.html?ref=docs"
             " for the archive.\n\n| year | event |\n|------|-------|\n"
             "| 911 | Treaty of Saint-Clair-sur-Epte |\n")
    text = "\n\n".join(paragraphs) + "\n\n" + extra
    chunks = chunk_pages([Page(1, text, 0)], embedder)
    assert [[c.start, c.end, c.tokens] for c in chunks] == [
        [0, 1021, 209], [1022, 2171, 216], [2173, 2522, 88], [2524, 3799, 221],
        [3800, 4128, 55], [4129, 4467, 57], [4469, 4796, 198]]


@pytest.mark.timeout(60)
def test_an_overlong_run_is_cut_by_length_and_the_prose_around_it_by_meaning(
        embedder: MiniLMEmbedder) -> None:
    prose = "Alice met Bob in Paris. They had coffee by the river."
    text = f"{prose}\n\n{'#' * 100_000}\n\n{prose}"
    started = time.monotonic()
    chunks = chunk_pages([Page(1, text, 0)], embedder, ChunkSettings(max_tokens=128))
    assert time.monotonic() - started < 20  # 10,000 "#" alone took 10 s before
    assert chunks[0].text == prose and chunks[-1].text == prose
    assert all(c.tokens <= 128 and len(c.text) <= MAX_RUN for c in chunks)
    assert "".join(c.text for c in chunks[1:-1]) == "#" * 100_000


def test_a_word_over_max_tokens_is_cut_to_fit(embedder: MiniLMEmbedder) -> None:
    text = "Before the run. " + "#" * 400 + " after the run."
    chunks = chunk_pages([Page(1, text, 0)], embedder, ChunkSettings(min_tokens=4,
                                                                      max_tokens=100))
    assert all(c.tokens <= 100 for c in chunks)
    assert all(text[c.start:c.end] == c.text for c in chunks)
    assert text.count("#") == sum(c.text.count("#") for c in chunks)
