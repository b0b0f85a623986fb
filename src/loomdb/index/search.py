"""Nearest-neighbour search through an index that takes an allow-list of labels.

The search of any ``VectorIndex`` that cannot evaluate node filters itself (the faiss view;
a Milvus tier would be another): a filter becomes the allow-list of matching labels; a
selective one is answered exactly over the matching vectors, a broad one through the index
restricted to them. Quantized candidates are re-scored exactly from the stored vectors. If
the index returns fewer than ``min(k, matches)`` results, the search falls back to exact, so
k matches in the store always give k results.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..config import IndexSettings
from ..filters import FilterNode
from ..model import Hit, Node, VectorSpace
from ..similarity import exact_scores
from ..storage.base import Backend
from .base import Labels, Matrix

__all__ = ["Candidates", "allow_list_search"]

BATCH = 20_000
#: ``candidates(fetch, allowed)``: up to ``fetch`` (label, approximate score) candidates from
#: the index, best first, restricted to ``allowed`` labels when given; and how many entries
#: were available to find (the index's size, or the allow-list's).
Candidates = Callable[[int, Labels | None], tuple[Labels, Matrix, int]]


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


def allow_list_search(
    backend: Backend,
    settings: IndexSettings,
    tenant: str,
    space: VectorSpace,
    query: Matrix,
    k: int,
    where: FilterNode | None,
    exact: bool,
    candidates: Candidates,
) -> list[Hit]:
    """The ``k`` nearest nodes to ``query`` (validated, one row) in (space, tenant), as
    ``VectorIndex.search`` promises, with the index consulted through ``candidates``."""
    allowed = None if where is None else backend.vector_labels(tenant, space.name, where)
    if allowed is not None and not len(allowed):
        return []
    if exact or (allowed is not None and len(allowed) <= settings.exact_threshold):
        return _hits(backend, tenant, space, *_exact(backend, tenant, space, query, k, allowed))
    fetch = k * settings.oversample(space.quantization)
    labels, scores, available = candidates(fetch, allowed)
    if space.quantization != "f32" and len(labels):
        labels, vectors = backend.vectors_by_label(tenant, space.name, labels.tolist())
        scores = exact_scores(space, query, vectors)
    hits = _hits(backend, tenant, space, *_top(labels, scores, k))
    if len(hits) < min(k, available):
        return _hits(backend, tenant, space, *_exact(backend, tenant, space, query, k, allowed))
    return hits
