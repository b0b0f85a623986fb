"""Exact vector similarity, shared by the index view, the backends that search vectors
themselves and the query executor, so every path scores a pair the same way."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .model import VectorSpace

__all__ = ["Matrix", "exact_scores", "normalized"]

Matrix = npt.NDArray[np.float32]


def normalized(vectors: Matrix) -> Matrix:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32, copy=False)


def exact_scores(space: VectorSpace, query: Matrix, vectors: Matrix) -> Matrix:
    """Higher-is-better scores: cosine similarity, inner product, or minus L2 distance."""
    scores: Matrix
    if space.metric == "cosine":
        scores = (normalized(vectors) @ normalized(query.reshape(1, -1))[0]).astype(np.float32)
    elif space.metric == "ip":
        scores = (vectors @ query).astype(np.float32)
    else:
        scores = -np.linalg.norm(vectors - query, axis=1).astype(np.float32)
    return scores
