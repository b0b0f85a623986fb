"""Spreading activation: energy flows from seed nodes along edges, fading with each hop.

Each hop, a node passes ``decay`` of its energy to its neighbours, split in proportion to
edge weight; energy arriving from several paths adds up, so a passage that shares two entities
with the seeds outranks one that shares one. Built on ``Backend.adjacent`` (one query per
hop), with the fan-out of each hop bounded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from ..errors import InvalidInput
from ..storage.base import Backend

__all__ = ["spread_activation"]


def spread_activation(
    backend: Backend,
    tenant: str,
    seeds: Mapping[str, float],
    *,
    types: Sequence[str] | None = ("mentions", "co_occurs"),
    hops: int = 2,
    decay: float = 0.5,
    fanout: int = 5000,
) -> dict[str, float]:
    """Activation of the nodes reached from ``seeds`` (id -> starting energy) within
    ``hops``, seeds excluded; at most ``fanout`` edges are followed per hop, strongest
    first."""
    if not 0.0 < decay <= 1.0:
        raise InvalidInput("decay must be in (0, 1]")
    if isinstance(hops, bool) or not isinstance(hops, int) or not 1 <= hops <= 4:
        raise InvalidInput("hops must be an integer from 1 to 4")
    energy: dict[str, float] = defaultdict(float)
    frontier = {node: float(value) for node, value in seeds.items() if value > 0}
    for _ in range(hops):
        if not frontier:
            break
        edges = backend.adjacent(tenant, list(frontier), types, "both", fanout)
        out_weight: dict[str, float] = defaultdict(float)
        for edge in edges:
            for end in (edge.src, edge.dst):
                if end in frontier:
                    out_weight[end] += max(edge.weight, 0.0)
        arriving: dict[str, float] = defaultdict(float)
        for edge in edges:
            for here, there in ((edge.src, edge.dst), (edge.dst, edge.src)):
                if here in frontier and out_weight[here] > 0:
                    share = max(edge.weight, 0.0) / out_weight[here]
                    arriving[there] += frontier[here] * decay * share
        for node, value in arriving.items():
            energy[node] += value
        frontier = dict(arriving)
    return {node: value for node, value in energy.items() if node not in seeds}
