"""LocalProvider: real MiniLM, spaCy NER and the extractive summarizer behind MLProvider."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from loomdb.errors import InvalidInput
from loomdb.ml import LocalProvider, MiniLMEmbedder, SpacyEntityExtractor
from loomdb.ml.bridge import Embedder, Entity, Matrix, MLProvider


@pytest.fixture(scope="module")
def provider() -> LocalProvider:
    return LocalProvider()


class ZeroEmbedder:
    """A broken embedder (all-zero vectors), to see health_check report instead of raise."""

    model_id = "zero"
    dim = 8

    def embed(self, texts: Sequence[str]) -> Matrix:
        return np.zeros((len(texts), self.dim), dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]


def test_it_is_an_ml_provider_that_loads_nothing_when_built() -> None:
    embedder, entities = MiniLMEmbedder(), SpacyEntityExtractor()
    local = LocalProvider(embedder, entities=entities)
    assert isinstance(local, MLProvider) and isinstance(ZeroEmbedder(), Embedder)
    assert (local.name, local.model_id, local.dim) == (
        "local", "sentence-transformers/all-MiniLM-L6-v2", 384)
    assert embedder._model is None and entities._nlp is None


@pytest.mark.ml
def test_embed_gives_minilm_unit_rows(provider: LocalProvider) -> None:
    vectors = provider.embed(["Alice met Bob in Paris", "graphs"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert provider.embed([]).shape == (0, 384)
    with pytest.raises(InvalidInput):
        provider.embed("a bare string")


@pytest.mark.ml
def test_entities_one_text_and_many(provider: LocalProvider) -> None:
    alice = [Entity("Alice", "PERSON", 0, 5), Entity("Bob", "PERSON", 10, 13),
             Entity("Paris", "GPE", 17, 22)]
    assert provider.extract_entities("Alice met Bob in Paris") == alice
    assert provider.extract_entities_many(["Alice met Bob in Paris", ""]) == [alice, []]


@pytest.mark.ml
def test_summaries_are_sentences_of_the_text(provider: LocalProvider) -> None:
    texts = ["Alice met Bob in Paris. They talked about graph databases for hours.",
             "Bob explained vector search. Alice explained graph traversal."]
    summary = provider.summarize(texts, max_words=12)
    assert 0 < len(summary.split()) <= 12
    assert all(sentence.strip() in " ".join(texts) for sentence in summary.split(". "))


@pytest.mark.ml
def test_health_check_loads_and_probes_every_model(provider: LocalProvider) -> None:
    health = provider.health_check()
    assert health.ok, health.detail
    assert (health.provider, health.model_id) == ("local", provider.model_id)
    assert health.detail["dim"] == 384 and health.detail["entities"] == ["PERSON", "PERSON", "GPE"]


def test_health_check_reports_a_broken_embedder_without_raising() -> None:
    health = LocalProvider(ZeroEmbedder(), entities=SpacyEntityExtractor()).health_check()
    assert not health.ok and health.model_id == "zero"
    assert health.detail["stage"] == "embed" and health.detail["code"] == "provider_error"
    assert "norm 0.000" in health.detail["error"]
