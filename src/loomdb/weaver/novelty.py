"""Novelty ("surprise") gating: a memory that repeats one already held reinforces it.

A new message or fact is compared with its nearest stored neighbour of the same kinds. Its
novelty is ``1 - similarity`` (1.0 when nothing similar is stored). At or above the
similarity threshold it is a repeat: the existing node is reinforced (``strength`` + 1,
``access_count`` + 1, ``last_accessed`` = now) instead of a second copy entering the index.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..config import NOVELTY_THRESHOLD
from ..ml.bridge import Matrix
from ..store import Store

__all__ = ["DEFAULT_THRESHOLD", "Novelty", "measure_novelty", "reinforce"]

NEIGHBOURS = 10  # nearest nodes of any kind looked at for one of a gated kind
DEFAULT_THRESHOLD = NOVELTY_THRESHOLD


@dataclass(frozen=True)
class Novelty:
    """How new a text is: ``score`` in [0, 1], its nearest stored node and their similarity,
    and whether it crossed the threshold (``repeat``)."""

    score: float
    nearest: str | None
    similarity: float | None
    repeat: bool


def measure_novelty(
    store: Store, vector: Matrix, kinds: tuple[str, ...], threshold: float,
    space: str = "text", exclude: str | None = None,
) -> Novelty:
    """The novelty of ``vector`` against the stored nodes of ``kinds`` in ``space``.

    The nearest neighbours are searched without a filter (the index's fast path) and the
    first of a gated kind is taken: a kind filter would cost a scan of every such node's
    label per message, which grows with the store."""
    hits = store.vector_search(vector, k=NEIGHBOURS, space=space)
    hits = [h for h in hits if h.node.id != exclude and h.node.kind in kinds]
    if not hits:
        return Novelty(1.0, None, None, False)
    similarity = float(np.clip(hits[0].score, -1.0, 1.0))
    return Novelty(round(1.0 - max(similarity, 0.0), 6), hits[0].node.id, similarity,
                   similarity >= threshold)


def reinforce(store: Store, node_id: str, now: float | None = None) -> None:
    """Strengthen ``node_id``: it was met again."""
    node = store.get_node(node_id)
    store.update_node(node_id, strength=(node.strength or 1.0) + 1.0,
                      access_count=node.access_count + 1,
                      last_accessed=time.time() if now is None else now)
