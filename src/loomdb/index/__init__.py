"""The vector index: a derived view of the stored vectors, stamped with the seq it covers."""

from .hnsw import HnswIndex
from .view import VectorIndexView

__all__ = ["HnswIndex", "VectorIndexView"]
