"""The vector index: a derived view of the stored vectors, stamped with the seq it covers.

``VectorIndex`` (``base.py``) is the seam; ``open_index`` picks a store's implementation once,
where the store is assembled, and everything else calls the protocol.
"""

from __future__ import annotations

from pathlib import Path

from ..config import StoreSettings
from ..storage.base import Backend
from .base import IndexStats, VectorIndex
from .hnsw import HnswIndex
from .pgvector import PgvectorIndex
from .view import VectorIndexView

__all__ = ["HnswIndex", "IndexStats", "PgvectorIndex", "VectorIndex", "VectorIndexView",
           "open_index"]


def open_index(backend: Backend, directory: Path | None, settings: StoreSettings) -> VectorIndex:
    """The vector index of a store: pgvector's own when the backend searches vectors itself
    (``native_vectors``), else the faiss HNSW view, saved in ``directory`` (``None``: kept in
    memory only)."""
    if backend.native_vectors:
        return PgvectorIndex(backend, read_only=settings.read_only)
    return VectorIndexView(backend, directory, settings.index, read_only=settings.read_only)
