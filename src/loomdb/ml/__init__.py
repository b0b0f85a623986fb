"""The ML bridge's providers and the local models behind them.

Heavy libraries (torch, sentence-transformers, spaCy, httpx) are imported only when a model or
client is first used; a missing extra raises ``MissingDependency`` with the pip command when
the object is built.
"""

from .entities import SpacyEntityExtractor, canonical_name
from .local import LocalProvider
from .minilm import MiniLMEmbedder
from .openai_compat import OpenAICompatibleProvider
from .summarize import ExtractiveSummarizer

__all__ = [
    "ExtractiveSummarizer",
    "LocalProvider",
    "MiniLMEmbedder",
    "OpenAICompatibleProvider",
    "SpacyEntityExtractor",
    "canonical_name",
]
