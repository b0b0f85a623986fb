"""Semantic chunking: cut a document where the topic changes, within token limits.

Each page is split into sentences, the sentences are embedded, and a chunk ends where the
similarity between neighbouring sentences drops (below the page's own ``cut_percentile``, or
below ``threshold`` when one is set), as long as the chunk already holds ``min_tokens``; it
always ends before it would pass ``max_tokens``. Chunks never cross pages, so each cites one
page, and every chunk keeps its character span so an answer can point at it.

A whitespace-free run longer than ``MAX_RUN`` characters (``####...``, base64, a hex dump) is
not prose: it is cut by length into chunks of its own, without embedding it, and the prose on
either side is chunked by meaning. A single word over ``max_tokens`` is cut the same way. So
chunking costs time in proportion to the text, and no chunk exceeds ``max_tokens``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import InvalidInput
from ..ml.bridge import Embedder, Matrix
from ..ml.sentences import MAX_RUN, long_runs, split_sentences

__all__ = ["Chunk", "ChunkSettings", "PageText", "chunk_pages"]


class PageText(Protocol):
    """What the chunker reads of a page: ``loomdb.ingest.extract.Page`` has these."""

    @property
    def number(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def start(self) -> int: ...


@dataclass(frozen=True)
class ChunkSettings:
    """Chunk sizes in the embedding model's tokens (MiniLM reads at most 256).

    Args:
        min_tokens: a topic change does not end a chunk smaller than this.
        max_tokens: no chunk is larger (a longer sentence is cut at word boundaries).
        threshold: cut where neighbouring sentences' cosine similarity is below this;
            ``None`` cuts at the page's ``cut_percentile`` of similarities instead.
        cut_percentile: the share of the weakest sentence links that count as topic changes.
    """

    min_tokens: int = 48
    max_tokens: int = 240
    threshold: float | None = None
    cut_percentile: float = 25.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_tokens <= self.max_tokens:
            raise InvalidInput("chunk sizes need 1 <= min_tokens <= max_tokens")
        if not 0.0 <= self.cut_percentile <= 100.0:
            raise InvalidInput("cut_percentile must be within 0..100")


@dataclass(frozen=True)
class Chunk:
    """A passage of a document. ``start``/``end`` index the page's text; ``doc_start`` and
    ``doc_end`` index the whole document's text."""

    index: int
    text: str
    page: int
    start: int
    end: int
    doc_start: int
    doc_end: int
    tokens: int


@dataclass(frozen=True)
class _Piece:
    start: int  # within the page
    end: int
    tokens: int


def chunk_pages(
    pages: Sequence[PageText], embedder: Embedder, settings: ChunkSettings | None = None
) -> list[Chunk]:
    """The chunks of a document's pages, in reading order, numbered from 0."""
    settings = settings or ChunkSettings()
    chunks: list[Chunk] = []
    for page in pages:
        for start, end, tokens in _chunk_page(page.text, embedder, settings):
            chunks.append(Chunk(len(chunks), page.text[start:end], page.number, start, end,
                                page.start + start, page.start + end, tokens))
    return chunks


def _chunk_page(
    text: str, embedder: Embedder, settings: ChunkSettings
) -> list[tuple[int, int, int]]:
    """The prose between over-long runs chunked by meaning, each run cut by length."""
    spans: list[tuple[int, int, int]] = []
    cursor = 0
    for start, end in long_runs(text):
        spans += _chunk_prose(text, cursor, start, embedder, settings)
        spans += [(p.start, p.end, p.tokens)
                  for p in _cut_run(text, start, end, embedder, settings.max_tokens)]
        cursor = end
    return spans + _chunk_prose(text, cursor, len(text), embedder, settings)


def _chunk_prose(
    text: str, start: int, end: int, embedder: Embedder, settings: ChunkSettings
) -> list[tuple[int, int, int]]:
    pieces = _pieces(text, start, end, embedder, settings.max_tokens)
    if not pieces:
        return []
    if len(pieces) == 1:
        return [(pieces[0].start, pieces[0].end, pieces[0].tokens)]
    vectors = embedder.embed([text[p.start:p.end] for p in pieces])
    links = _link_similarities(vectors)
    cut_below = settings.threshold
    if cut_below is None:
        cut_below = float(np.percentile(links, settings.cut_percentile))
    return _group(pieces, links, cut_below, settings)


def _pieces(text: str, start: int, end: int, embedder: Embedder, max_tokens: int) -> list[_Piece]:
    """Sentences of ``text[start:end]``, any longer than ``max_tokens`` cut at word
    boundaries."""
    spans = [(start + a, start + b) for a, b in split_sentences(text[start:end])]
    counts = embedder.count_tokens([text[a:b] for a, b in spans])
    pieces: list[_Piece] = []
    for (a, b), tokens in zip(spans, counts, strict=True):
        if tokens <= max_tokens:
            pieces.append(_Piece(a, b, tokens))
        else:
            pieces.extend(_split_long(text, a, b, tokens, embedder, max_tokens))
    return pieces


def _split_long(
    text: str, start: int, end: int, tokens: int, embedder: Embedder, max_tokens: int
) -> list[_Piece]:
    """Cut an over-long sentence into word-aligned windows of at most ``max_tokens``: each
    window is sized from the sentence's tokens per word, and halved until it fits."""
    words = _words(text, start, end)
    step = max(int(max_tokens / max(tokens / max(len(words), 1), 1e-9) * 0.9), 1)
    pieces, i = [], 0
    while i < len(words):
        size = min(step, len(words) - i)
        while True:
            a, b = words[i][0], words[i + size - 1][1]
            count = embedder.count_tokens([text[a:b]])[0]
            if count <= max_tokens or size == 1:
                break
            size = max(size // 2, 1)
        if count <= max_tokens:
            pieces.append(_Piece(a, b, count))
        else:  # one word alone is too long
            pieces.extend(_cut_run(text, a, b, embedder, max_tokens))
        i += size
    return pieces


def _cut_run(text: str, start: int, end: int, embedder: Embedder, max_tokens: int) -> list[_Piece]:
    """Cut a whitespace-free run into pieces of at most ``MAX_RUN`` characters and
    ``max_tokens`` tokens, shrinking the window whenever one does not fit."""
    pieces, size = [], MAX_RUN
    while start < end:
        stop = min(start + size, end)
        count = embedder.count_tokens([text[start:stop]])[0]
        if count > max_tokens and stop - start > 1:
            size = max(int((stop - start) * max_tokens / count * 0.9), 1)
            continue
        pieces.append(_Piece(start, stop, count))
        start = stop
    return pieces


def _words(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, i = [], start
    while i < end:
        while i < end and text[i].isspace():
            i += 1
        j = i
        while j < end and not text[j].isspace():
            j += 1
        if j > i:
            spans.append((i, j))
        i = j
    return spans


def _link_similarities(vectors: Matrix) -> Matrix:
    """Similarity of each sentence to the one before it, smoothed over a window of two: a
    topic change shows as a dip against the recent context, not one odd sentence."""
    context = vectors[:-1].copy()
    context[1:] += vectors[:-2]
    context /= np.maximum(np.linalg.norm(context, axis=1, keepdims=True), 1e-12)
    similarities: Matrix = np.sum(context * vectors[1:], axis=1, dtype=np.float32)
    return similarities


def _group(
    pieces: list[_Piece], links: Matrix, cut_below: float, settings: ChunkSettings
) -> list[tuple[int, int, int]]:
    groups: list[list[_Piece]] = [[pieces[0]]]
    size = pieces[0].tokens
    for piece, link in zip(pieces[1:], links, strict=True):
        too_big = size + piece.tokens > settings.max_tokens
        topic_change = link < cut_below and size >= settings.min_tokens
        if too_big or topic_change:
            groups.append([piece])
            size = piece.tokens
        else:
            groups[-1].append(piece)
            size += piece.tokens
    _merge_small_tail(groups, settings)
    return [(g[0].start, g[-1].end, sum(p.tokens for p in g)) for g in groups]


def _merge_small_tail(groups: list[list[_Piece]], settings: ChunkSettings) -> None:
    """A last chunk below ``min_tokens`` joins the one before it when both fit together."""
    if len(groups) < 2:
        return
    tail, before = groups[-1], groups[-2]
    tail_size, before_size = (sum(p.tokens for p in g) for g in (tail, before))
    if tail_size < settings.min_tokens and tail_size + before_size <= settings.max_tokens:
        before.extend(groups.pop())
