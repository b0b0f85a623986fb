"""MiniLMEmbedder: real all-MiniLM-L6-v2 vectors, and the install hint when the extra is gone."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from loomdb.errors import InvalidInput, MissingDependency
from loomdb.ml import MiniLMEmbedder


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.mark.ml
def test_a_sentence_embeds_to_a_384_d_unit_vector(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed(["Alice met Bob in Paris"])
    assert vectors.shape == (1, 384) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-5)
    assert np.isfinite(vectors).all()


@pytest.mark.ml
def test_similar_sentences_score_higher_than_unrelated(embedder: MiniLMEmbedder) -> None:
    anchor, similar, unrelated = embedder.embed([
        "Alice met Bob in Paris",
        "Bob and Alice got together in the French capital",
        "The recipe needs two cups of flour and an egg",
    ])
    assert float(anchor @ similar) > float(anchor @ unrelated) + 0.2


@pytest.mark.ml
def test_batches_keep_order_and_match_single_embeddings(embedder: MiniLMEmbedder) -> None:
    texts = ["first text", "a second, longer text about graphs", "third"]
    batch = embedder.embed(texts)
    single = np.vstack([embedder.embed([t]) for t in texts])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_no_texts_give_an_empty_matrix_without_loading() -> None:
    embedder = MiniLMEmbedder()
    assert embedder.embed([]).shape == (0, 384)
    assert embedder._model is None


def test_a_bare_string_is_refused() -> None:
    with pytest.raises(InvalidInput, match="sequence of strings"):
        MiniLMEmbedder().embed("Alice met Bob")


def test_missing_extra_fails_at_construction_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "sentence_transformers" else real_find_spec(name)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(MissingDependency) as error:
        MiniLMEmbedder()
    assert 'pip install "loomdb[ml]"' in error.value.message
    assert "torch==2.13.0" in error.value.message
    assert error.value.code == "missing_dependency"
