"""Reciprocal rank fusion: many rankings into one, with how much the retrievers agree.

Each retriever (dense, lexical, graph proximity, spreading activation) ranks some nodes; a
node's fused score is ``sum(weight_r / (k + rank_r))`` over the retrievers that found it
(Cormack et al., 2009; k = 60). RRF needs no score calibration, which matters here: cosine
similarity, BM25 and graph nearness live on unrelated scales. ``agreement`` counts the
retrievers that found the node, a cheap confidence signal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import InvalidInput

__all__ = ["DEFAULT_WEIGHTS", "RRF_K", "Fused", "reciprocal_rank_fusion"]

RRF_K = 60
DEFAULT_WEIGHTS: dict[str, float] = {"dense": 1.0, "lexical": 1.0, "graph": 0.5,
                                     "activation": 0.5}


@dataclass
class Fused:
    """One node after fusion: its fused score, each retriever's own score, and its rank in
    each ranking (1-based)."""

    id: str
    score: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)

    @property
    def agreement(self) -> int:
        return len(self.ranks)


def check_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """The default weights overridden by ``weights``; each must be a finite number >= 0."""
    merged = dict(DEFAULT_WEIGHTS)
    for name, value in (weights or {}).items():
        if name not in DEFAULT_WEIGHTS:
            raise InvalidInput(f"unknown retriever {name!r} in weights; known: "
                               f"{sorted(DEFAULT_WEIGHTS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise InvalidInput(f"weight of {name!r} must be a number >= 0")
        merged[name] = float(value)
    return merged


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[tuple[str, float]]],
    weights: Mapping[str, float] | None = None,
    k: int = RRF_K,
) -> list[Fused]:
    """Fuse ``rankings`` (retriever -> [(id, its score)] best first); best first, ties broken
    by agreement, then by the best single rank, then by id (so results are deterministic).
    Equal scores within a ranking share a rank ("1224" competition ranking)."""
    merged = check_weights(weights)
    fused: dict[str, Fused] = {}
    for retriever, ranking in rankings.items():
        weight = merged.get(retriever, 1.0)
        rank, previous = 0, None
        for position, (node_id, score) in enumerate(ranking, start=1):
            if score != previous:  # tied scores share a rank: a tie carries no preference
                rank, previous = position, score
            entry = fused.setdefault(node_id, Fused(node_id))
            if retriever in entry.ranks:
                continue  # a ranking listing a node twice counts it once
            entry.ranks[retriever] = rank
            entry.scores[retriever] = score
            entry.score += weight / (k + rank)
    return sorted(fused.values(),
                  key=lambda f: (-f.score, -f.agreement, min(f.ranks.values()), f.id))
