"""The default local models: what ``loomdb.open(ml="local")`` builds on first use."""

from __future__ import annotations

from .bridge import Embedder, MLProvider

__all__ = ["default_embedder", "default_provider"]


def default_embedder() -> Embedder:
    """MiniLM through ONNX Runtime with int8 weights when onnxruntime is installed (several
    times faster on a CPU, cosine >= 0.99 to the reference vectors: docs/benchmarks.md), else
    the reference sentence-transformers model. Both give the same model id, so their vectors
    share a space."""
    from .onnx import OnnxMiniLMEmbedder, onnx_available

    if onnx_available():
        return OnnxMiniLMEmbedder()
    from .minilm import MiniLMEmbedder

    return MiniLMEmbedder()


def default_provider() -> MLProvider:
    """The local provider: MiniLM embeddings, spaCy entities, extractive summaries."""
    from .local import LocalProvider

    return LocalProvider(default_embedder())
