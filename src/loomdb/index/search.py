"""Nearest-neighbour search over a vector space: exact, or through the HNSW view.

A selective filter is answered exactly over the matching vectors; a broad one through the
index restricted to the matching labels. Quantized candidates are re-scored exactly from the
stored vectors. If the index returns fewer than ``min(k, matches)`` results, the search falls
back to exact, so k matches in the store always give k results.

A backend with ``native_vectors`` (PostgreSQL + pgvector) answers the whole search itself, with
the same guarantees and the same scores; the view is not used for it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..config import IndexSettings
from ..filters import FilterNode
from ..model import Hit, Node, VectorSpace
from ..similarity import exact_scores
from ..storage.base import Backend
from .view import VectorIndexView

__all__ = ["vector_search"]

Labels = npt.NDArray[np.int64]
Matrix = npt.NDArray[np.float32]
BATCH = 20_000


def _top(labels: Labels, scores: Matrix, k: int) -> tuple[Labels, Matrix]:
    if len(scores) > k:
        part = np.argpartition(-scores, k - 1)[:k]
        labels, scores = labels[part], scores[part]
    order = np.lexsort((labels, -scores))  # score, then label: deterministic ties
    return labels[order], scores[order]


def _exact(
    backend: Backend,
    tenant: str,
    space: VectorSpace,
    query: Matrix,
    k: int,
    labels: Labels | None,
) -> tuple[Labels, Matrix]:
    best_labels, best_scores = np.zeros(0, np.int64), np.zeros(0, np.float32)
    if labels is None:
        batches = backend.scan_vectors(tenant, space.name, BATCH)
    else:
        batches = (
            backend.vectors_by_label(tenant, space.name, labels[i : i + BATCH].tolist())
            for i in range(0, len(labels), BATCH)
        )
    for found, vectors in batches:
        scores = exact_scores(space, query, vectors)
        best_labels, best_scores = _top(
            np.concatenate([best_labels, found]), np.concatenate([best_scores, scores]), k
        )
    return best_labels, best_scores


def _hits(
    backend: Backend, tenant: str, space: VectorSpace, labels: Labels, scores: Matrix
) -> list[Hit]:
    nodes: dict[int, Node] = backend.nodes_by_label(tenant, space.name, labels.tolist())
    return [
        Hit.of(nodes[int(label)], float(score), {"vector": float(score)})
        for label, score in zip(labels, scores, strict=True)
        if int(label) in nodes
    ]


def vector_search(
    backend: Backend,
    view: VectorIndexView,
    settings: IndexSettings,
    tenant: str,
    space: VectorSpace,
    query: Matrix,
    k: int,
    where: FilterNode | None = None,
    exact: bool = False,
) -> list[Hit]:
    """The ``k`` nearest nodes to ``query`` (validated, one row) in (space, tenant)."""
    if backend.native_vectors:  # e.g. pgvector: the backend holds its own ANN indexes
        found = backend.search_vectors(tenant, space, query, k, where, exact)
        return [Hit.of(node, score, {"vector": score}) for node, score in found]
    allowed = None if where is None else backend.vector_labels(tenant, space.name, where)
    if allowed is not None and not len(allowed):
        return []
    if exact or (allowed is not None and len(allowed) <= settings.exact_threshold):
        return _hits(backend, tenant, space, *_exact(backend, tenant, space, query, k, allowed))
    with view.lock:
        index = view.get(space, tenant)
        available = len(index) if allowed is None else len(allowed)
        fetch = k * settings.oversample(space.quantization)
        labels, scores = index.search(query, fetch, allowed)
    if space.quantization != "f32" and len(labels):
        labels, vectors = backend.vectors_by_label(tenant, space.name, labels.tolist())
        scores = exact_scores(space, query, vectors)
    hits = _hits(backend, tenant, space, *_top(labels, scores, k))
    if len(hits) < min(k, available):
        return _hits(backend, tenant, space, *_exact(backend, tenant, space, query, k, allowed))
    return hits
