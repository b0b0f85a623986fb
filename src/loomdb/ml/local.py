"""LocalProvider: embeddings, entities and summaries on this machine, with no API key.

An ``Embedder`` (MiniLM unless another is given), spaCy NER and the extractive summarizer
over that embedder. Building the provider checks that the [ml] extra is installed; the models
load on first use (or in ``health_check``), once per process. ::

    provider = LocalProvider()
    provider.embed(["Alice met Bob in Paris"])          # (1, 384) float32
    provider.extract_entities("Alice met Bob in Paris")  # Alice, Bob (PERSON), Paris (GPE)
    provider.summarize([article], max_words=60)
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from ..errors import InvalidInput, LoomError, ProviderError
from ..model import JSONObject
from .bridge import Embedder, Entity, Health, Matrix, MLProvider
from .entities import EntityExtractor, SpacyEntityExtractor
from .minilm import MiniLMEmbedder
from .summarize import ExtractiveSummarizer

__all__ = ["LocalProvider"]

_PROBE_TEXT = "Alice met Bob in Paris."


class LocalProvider(MLProvider):
    """The default provider: local models only.

    Args:
        embedder: turns texts into vectors; ``MiniLMEmbedder()`` if omitted.
        entities: finds entities; ``SpacyEntityExtractor()`` if omitted.
        summarizer: writes summaries; an ``ExtractiveSummarizer`` over ``embedder`` if omitted.
    """

    name = "local"

    def __init__(
        self,
        embedder: Embedder | None = None,
        *,
        entities: EntityExtractor | None = None,
        summarizer: ExtractiveSummarizer | None = None,
    ) -> None:
        self.embedder: Embedder = embedder if embedder is not None else MiniLMEmbedder()
        self.entities: EntityExtractor = (
            entities if entities is not None else SpacyEntityExtractor()
        )
        self.summarizer = (
            summarizer if summarizer is not None else ExtractiveSummarizer(self.embedder)
        )

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def embed(self, texts: Sequence[str]) -> Matrix:
        """Unit-length float32 rows from the embedder, one per text; ``(0, dim)`` for none."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InvalidInput("embed() takes a sequence of strings (wrap one text in a list)")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.embedder.embed(texts)

    def extract_entities(self, text: str) -> list[Entity]:
        if not isinstance(text, str):
            raise InvalidInput(f"extract_entities() takes a string, got {type(text).__name__}")
        return self.entities.extract(text)

    def extract_entities_many(self, texts: Sequence[str]) -> list[list[Entity]]:
        return self.entities.extract_many(texts)

    def summarize(self, texts: Sequence[str], max_words: int = 80) -> str:
        return self.summarizer.summarize(texts, max_words)

    def summarize_embedded(self, texts: Sequence[str], vectors: Matrix,
                           max_words: int = 80) -> str:
        return self.summarizer.summarize_units(texts, vectors, max_words)

    def health_check(self) -> Health:
        """Loads every model and runs each once on a tiny probe; a failure is reported in
        ``detail`` (``error``, ``code``, ``stage``) instead of raised."""
        detail: JSONObject = {"embedder": type(self.embedder).__name__}
        stage = "embed"
        started = time.perf_counter()
        try:
            self._probe_embedding()
            stage = "entities"
            detail["entities"] = [e.label for e in self.extract_entities(_PROBE_TEXT)]
            stage = "summarize"
            self.summarize([_PROBE_TEXT], max_words=8)
        except Exception as exc:  # health checks report every failure, they never raise
            detail.update(stage=stage, error=f"{type(exc).__name__}: {exc}",
                          code=exc.code if isinstance(exc, LoomError) else "unexpected")
            return Health(False, self.name, self._safe_model_id(), detail)
        detail.update(dim=self.dim, seconds=round(time.perf_counter() - started, 3))
        return Health(True, self.name, self.model_id, detail)

    def _probe_embedding(self) -> None:
        vectors = self.embed([_PROBE_TEXT])
        norm = float(np.linalg.norm(vectors[0])) if vectors.shape[:1] == (1,) else 0.0
        if vectors.shape != (1, self.dim) or not np.isfinite(vectors).all() \
                or abs(norm - 1.0) > 1e-3:
            raise ProviderError(
                f"the embedder returned a {vectors.shape} matrix of norm {norm:.3f} for one "
                f"text; expected (1, {self.dim}) of unit length"
            )

    def _safe_model_id(self) -> str:
        try:
            return self.model_id
        except Exception:  # an embedder whose model_id itself fails is still reportable
            return "unknown"
