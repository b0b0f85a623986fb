"""The default local models: what ``loomdb.open(ml="local")`` builds on first use."""

from __future__ import annotations

from .bridge import Embedder, MLProvider

__all__ = ["default_embedder", "default_provider"]


def default_embedder() -> Embedder:
    """MiniLM through sentence-transformers (the reference implementation)."""
    from .minilm import MiniLMEmbedder

    return MiniLMEmbedder()


def default_provider() -> MLProvider:
    """The local provider: MiniLM embeddings, spaCy entities, extractive summaries."""
    from .local import LocalProvider

    return LocalProvider(default_embedder())
