"""Sentence spans: where the sentences of a text start and end.

spaCy's rule-based ``sentencizer`` on a blank English pipeline (its tokenizer knows "Dr." and
"e.g." are not sentence ends). Blank lines always end a sentence, so headings, list items and
table rows without final punctuation stay apart. Spans index the original text.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Iterable
from typing import Protocol

from ..errors import MissingDependency

__all__ = ["split_sentences"]

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n|\n(?=[ \t]*(?:[-*+•]|\d+[.)]|#|\|)[ \t])")
_MAX_SPACY_CHARS = 200_000  # spaCy's own limit is 1M; paragraphs above this are cut by length



class _Sentence(Protocol):
    """What sentence splitting reads of a spaCy ``Span``."""

    @property
    def start_char(self) -> int: ...
    @property
    def end_char(self) -> int: ...


class _Sentences(Protocol):
    """What sentence splitting reads of a spaCy ``Doc``."""

    @property
    def sents(self) -> Iterable[_Sentence]: ...


class _Sentencizer(Protocol):
    """A spaCy pipeline that marks sentences: called on a text, it gives a ``Doc``."""

    def __call__(self, text: str) -> _Sentences: ...


_nlp: _Sentencizer | None = None
_nlp_lock = threading.Lock()


def _sentencizer() -> _Sentencizer:
    global _nlp
    with _nlp_lock:
        if _nlp is None:
            if importlib.util.find_spec("spacy") is None:
                raise MissingDependency(
                    'sentence splitting needs spaCy (the [ml] extra): pip install "loomdb[ml]"'
                )
            import spacy

            nlp = spacy.blank("en")
            nlp.add_pipe("sentencizer")
            _nlp = nlp
        return _nlp


def _paragraphs(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return spans


def split_sentences(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` spans of the sentences of ``text``, in order, without surrounding
    whitespace and without empty spans."""
    nlp = _sentencizer()
    spans: list[tuple[int, int]] = []
    for p_start, p_end in _paragraphs(text):
        for piece in range(p_start, p_end, _MAX_SPACY_CHARS):
            piece_end = min(piece + _MAX_SPACY_CHARS, p_end)
            chunk = text[piece:piece_end]
            if not chunk.strip():
                continue
            for sent in nlp(chunk).sents:
                _append_trimmed(text, piece + sent.start_char, piece + sent.end_char, spans)
    return spans


def _append_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
