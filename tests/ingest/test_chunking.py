"""Semantic chunking on real text with the real MiniLM embedder."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from loomdb.config import shared_data_dir
from loomdb.errors import InvalidInput
from loomdb.ingest.chunking import ChunkSettings, chunk_pages
from loomdb.ml import MiniLMEmbedder

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
