"""Local machine-learning models: embedders (and, later, the ML bridge around them).

Heavy libraries (torch, sentence-transformers) are imported only when a model is first used;
a missing extra raises ``MissingDependency`` with the pip command when the model is built.
"""

from .minilm import MiniLMEmbedder

__all__ = ["MiniLMEmbedder"]
