"""The ML bridge: what loomdb asks of a machine-learning provider, and the values it gets back.

A provider embeds texts, finds named entities and writes summaries. The pipelines (ingest, the
weaver, chats) only ever talk to an ``MLProvider``; which models answer is the provider's
business. Providers: ``LocalProvider`` (MiniLM + spaCy + an extractive summarizer, no API key)
and ``OpenAICompatibleProvider`` (vLLM, a llama.cpp server, OpenAI).

An ``Embedder`` is the smaller part that turns texts into vectors; providers are built around
one, and the chunker uses one to count tokens and measure where topics change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..model import JSONObject

__all__ = ["Embedder", "Entity", "Health", "MLProvider", "Matrix"]

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Entity:
    """A named entity found in a text: its surface form, a label (spaCy's scheme: PERSON, ORG,
    GPE, ...) and its character span, so ``text == source[start:end]``."""

    text: str
    label: str
    start: int
    end: int


@dataclass(frozen=True)
class Health:
    """The answer of ``health_check()``: whether the provider can serve, and why not."""

    ok: bool
    provider: str
    model_id: str
    detail: JSONObject = field(default_factory=dict)


@runtime_checkable
class Embedder(Protocol):
    """Texts to unit-length float32 vectors, one row per text, in order."""

    model_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> Matrix: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """The model's own token count for each text (special tokens excluded)."""
        ...


class MLProvider(ABC):
    """Embeddings, entities and summaries behind one interface.

    Contract: ``embed`` returns a ``(len(texts), dim)`` float32 matrix of unit-length rows
    (``(0, dim)`` for no texts); ``extract_entities`` returns entities in text order with spans
    into the given text; ``summarize`` returns at most ``max_words`` words drawn from (or, for a
    generative provider, about) the texts, and ``""`` for no text. Failures raise ``LoomError``
    (``BackendUnavailable`` when a remote endpoint cannot be reached, ``MissingDependency``
    when a local model is not installed), never a library's own exception.
    """

    name: str = "provider"

    @property
    @abstractmethod
    def model_id(self) -> str:
        """The embedding model's id: vector spaces record it, and refuse vectors of another."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """The embedding dimension."""

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> Matrix:
        """Unit-length float32 embeddings, one row per text."""

    @abstractmethod
    def extract_entities(self, text: str) -> list[Entity]:
        """The named entities of one text."""

    def extract_entities_many(self, texts: Sequence[str]) -> list[list[Entity]]:
        """The named entities of each text; providers override this to batch."""
        return [self.extract_entities(text) for text in texts]

    @abstractmethod
    def summarize(self, texts: Sequence[str], max_words: int = 80) -> str:
        """A summary of the texts (read as one document, in order) of at most ``max_words``."""

    def summarize_embedded(self, texts: Sequence[str], vectors: Matrix,
                           max_words: int = 80) -> str:
        """A summary of ``texts`` (whole units, such as a chat's messages) whose embeddings
        are already known; an extractive provider ranks the units by these vectors instead of
        embedding again. By default the same as ``summarize``."""
        return self.summarize(texts, max_words)

    @abstractmethod
    def health_check(self) -> Health:
        """Whether the provider can serve now; never raises."""
