"""The real local models (MiniLM, spaCy), loaded once for every test that enriches."""

from __future__ import annotations

from loomdb.ml.bridge import MLProvider
from loomdb.ml.defaults import default_provider

_provider: MLProvider | None = None


def local_provider() -> MLProvider:
    """One local provider per test process: its models load once."""
    global _provider
    if _provider is None:
        _provider = default_provider()
    return _provider
