"""Sentence spans: where the sentences of a text start and end.

spaCy's rule-based ``sentencizer`` on a blank English pipeline (its tokenizer knows "Dr." and
"e.g." are not sentence ends). Blank lines always end a sentence, so headings, list items and
table rows without final punctuation stay apart. Spans index the original text.

A whitespace-free run longer than ``MAX_RUN`` characters (``####...``, base64, a hex dump) is
never prose, and never reaches spaCy: its tokenizer strips leading and trailing punctuation one
character at a time, copying the rest of the token each time, so such a run costs time
quadratic in its length (10 s for 10,000 ``#``). The run is cut by length instead, into spans
of at most ``MAX_RUN`` characters, which keeps splitting linear in the text's length.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Iterable
from typing import Protocol

from ..errors import MissingDependency

__all__ = ["MAX_RUN", "long_runs", "split_sentences"]

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n|\n(?=[ \t]*(?:[-*+•]|\d+[.)]|#|\|)[ \t])")
_MAX_SPACY_CHARS = 200_000  # spaCy's own limit is 1M; paragraphs above this are cut by length
MAX_RUN = 500  # runs of "#" this long cost spaCy 0.7 s a MB; 10,000 long, 1,000 s a MB
_LONG_RUN = re.compile(rf"\S{{{MAX_RUN + 1},}}")


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


def long_runs(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` spans of the whitespace-free runs longer than ``MAX_RUN`` characters
    within ``text[start:end]``, in order."""
    return [m.span() for m in _LONG_RUN.finditer(text, start, len(text) if end is None else end)]


def split_sentences(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` spans of the sentences of ``text``, in order, without surrounding
    whitespace and without empty spans. Time is linear in the length of ``text``."""
    nlp = _sentencizer()
    spans: list[tuple[int, int]] = []
    for p_start, p_end in _paragraphs(text):
        cursor = p_start
        for r_start, r_end in long_runs(text, p_start, p_end):
            _split_prose(nlp, text, cursor, r_start, spans)
            spans.extend((a, min(a + MAX_RUN, r_end)) for a in range(r_start, r_end, MAX_RUN))
            cursor = r_end
        _split_prose(nlp, text, cursor, p_end, spans)
    return spans


def _split_prose(nlp: _Sentencizer, text: str, start: int, end: int,
                 spans: list[tuple[int, int]]) -> None:
    """Append the sentences of ``text[start:end]``, which holds no over-long run."""
    for piece in range(start, end, _MAX_SPACY_CHARS):
        piece_end = min(piece + _MAX_SPACY_CHARS, end)
        chunk = text[piece:piece_end]
        if not chunk.strip():
            continue
        for sent in nlp(chunk).sents:
            _append_trimmed(text, piece + sent.start_char, piece + sent.end_char, spans)


def _append_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
