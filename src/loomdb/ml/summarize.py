"""An extractive summarizer: the most central sentences, without repeats, in reading order.

The algorithm (continuous LexRank, then maximal marginal relevance):

1. The texts are read as one document; ``split_sentences`` finds its sentences.
2. At most ``max_sentences`` are considered: past that, that many sentences evenly spaced
   through the document (first and last included), so a long text is covered end to end at a
   bounded cost (embedding dominates: one model call per considered sentence).
3. Each sentence is embedded; cosine similarities, with negatives clipped to zero and the
   diagonal removed, weight a sentence graph. PageRank on it (damping 0.85, power iteration)
   gives each sentence's centrality: how much the rest of the text says the same thing.
4. Sentences are picked greedily by ``relevance * centrality - (1 - relevance) * (highest
   similarity to a sentence already picked)``, with centrality scaled to [0, 1], skipping any
   that would overrun ``max_words`` or that nearly repeats a pick (cosine >= ``duplicate``);
   ties go to the earlier sentence.
5. The picks are joined in their original order. If not even one sentence fits, the most
   central one is cut to ``max_words`` words.

Everything is deterministic for a deterministic embedder. ::

    summarizer = ExtractiveSummarizer(MiniLMEmbedder())
    summarizer.summarize([article], max_words=60)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput
from .bridge import Embedder
from .sentences import split_sentences

__all__ = ["ExtractiveSummarizer", "pagerank"]

Vector = npt.NDArray[np.float64]


class ExtractiveSummarizer:
    """Summaries made of the texts' own sentences, chosen by centrality with a redundancy
    penalty (see the module docstring for the algorithm).

    Args:
        embedder: any ``Embedder`` (unit-length rows expected, so a dot product is a cosine).
        max_sentences: the most sentences considered per call (evenly spaced beyond that).
        relevance: MMR's weight on centrality against redundancy, in (0, 1]; 1 ignores
            redundancy.
        duplicate: cosine similarity at which a sentence counts as a repeat of one already
            picked and is never picked (boilerplate repeated on every page, say).
    """

    def __init__(self, embedder: Embedder, *, max_sentences: int = 100,
                 relevance: float = 0.7, duplicate: float = 0.9) -> None:
        if isinstance(max_sentences, bool) or not isinstance(max_sentences, int) \
                or max_sentences < 1:
            raise InvalidInput(f"max_sentences must be a positive integer, got {max_sentences!r}")
        if not 0.0 < relevance <= 1.0:
            raise InvalidInput(f"relevance must be in (0, 1], got {relevance!r}")
        self.embedder = embedder
        self.max_sentences = max_sentences
        self.relevance = relevance
        self.duplicate = duplicate

    def summarize(self, texts: Sequence[str], max_words: int = 80) -> str:
        """At most ``max_words`` words of the texts' most central, least redundant sentences,
        in their original order; ``""`` when there is no text."""
        _check_arguments(texts, max_words)
        sentences = self.candidate_sentences(texts)
        if not sentences:
            return ""
        if len(sentences) == 1:
            return _first_words(sentences[0], max_words)
        return self._rank_and_pick(sentences, self.embedder.embed(sentences), max_words)

    def summarize_units(self, units: Sequence[str], vectors: npt.NDArray[np.float32],
                        max_words: int = 80) -> str:
        """Like ``summarize``, with each text a whole unit (a chat message, say) ranked by its
        known vector, so nothing is embedded again. Beyond ``max_sentences`` units, evenly
        spaced ones are considered."""
        _check_arguments(units, max_words)
        if len(units) != len(vectors):
            raise InvalidInput(f"{len(units)} units but {len(vectors)} vectors")
        keep = [i for i, unit in enumerate(units) if unit.strip()]
        if len(keep) > self.max_sentences:
            spaced = np.linspace(0, len(keep) - 1, self.max_sentences).round().astype(int)
            keep = [keep[i] for i in spaced]
        texts = [" ".join(units[i].split()) for i in keep]
        if len(texts) <= 1:
            return _first_words(texts[0], max_words) if texts else ""
        return self._rank_and_pick(texts, vectors[keep], max_words)

    def _rank_and_pick(self, sentences: list[str], embedded: npt.NDArray[np.float32],
                       max_words: int) -> str:
        vectors = np.asarray(embedded, dtype=np.float64)
        similarity = np.clip(vectors @ vectors.T, 0.0, None)
        np.fill_diagonal(similarity, 0.0)
        centrality = pagerank(similarity)
        words = [len(sentence.split()) for sentence in sentences]
        picked = self._pick(centrality, similarity, words, max_words)
        if not picked:
            return _first_words(sentences[int(np.argmax(centrality))], max_words)
        return " ".join(sentences[i] for i in sorted(picked))

    def candidate_sentences(self, texts: Sequence[str]) -> list[str]:
        """The sentences considered, in order: all of them, or ``max_sentences`` evenly
        spaced ones."""
        document = "\n\n".join(texts)
        spans = split_sentences(document)
        if len(spans) > self.max_sentences:
            keep = np.linspace(0, len(spans) - 1, self.max_sentences).round().astype(int)
            spans = [spans[i] for i in keep]
        return [" ".join(document[start:end].split()) for start, end in spans]

    def _pick(self, centrality: Vector, similarity: Vector, words: list[int],
              max_words: int) -> list[int]:
        """Greedy MMR under the word budget; returns the chosen sentence indexes."""
        relevance = centrality / centrality.max() if centrality.max() > 0 else centrality
        redundancy = np.zeros_like(relevance)
        open_ = np.ones(len(words), dtype=bool)
        picked: list[int] = []
        budget = max_words
        while True:
            open_ &= np.asarray(words) <= budget
            if not open_.any():
                return picked
            score = self.relevance * relevance - (1.0 - self.relevance) * redundancy
            best = int(np.argmax(np.where(open_, score, -np.inf)))
            picked.append(best)
            budget -= words[best]
            open_[best] = False
            open_ &= similarity[best] < self.duplicate
            redundancy = np.maximum(redundancy, similarity[best])


def pagerank(weights: Vector, damping: float = 0.85, tolerance: float = 1e-9,
             max_iterations: int = 200) -> Vector:
    """PageRank of a weighted graph (``weights[i, j]`` is the edge i→j), by power iteration.

    Rows without weight link everywhere (a dangling sentence shares its vote evenly). The
    result sums to 1.
    """
    n = weights.shape[0]
    totals = weights.sum(axis=1, keepdims=True)
    transition = np.where(totals > 0, weights / np.where(totals > 0, totals, 1.0), 1.0 / n)
    rank = np.full(n, 1.0 / n)
    for _ in range(max_iterations):
        updated: Vector = (1.0 - damping) / n + damping * (transition.T @ rank)
        if np.abs(updated - rank).sum() < tolerance:
            return updated
        rank = updated
    return rank


def _check_arguments(texts: Sequence[str], max_words: int) -> None:
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise InvalidInput("summarize() takes a sequence of strings (wrap one text in a list)")
    if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 1:
        raise InvalidInput(f"max_words must be a positive integer, got {max_words!r}")


def _first_words(text: str, max_words: int) -> str:
    return " ".join(text.split()[:max_words])
