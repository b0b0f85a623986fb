"""The statistics the planner estimates from, kept per tenant and refreshed as the store grows.

Counts per kind and per edge type come from the backend; filter selectivity is estimated by
evaluating the filter (with the same evaluator the SQL translation is held to) on a random
sample of the tenant's nodes; a filter on ``kind`` alone is counted exactly. Statistics are
recomputed once the store has changed by a tenth of its size (or 1,000 changes), so planning
costs microseconds, not a scan.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ..filters import FilterNode, matches, referenced_fields
from ..model import Node
from ..storage.base import Backend

__all__ = ["Statistics", "TenantStats"]

SAMPLE_SIZE = 2000
REFRESH_FRACTION = 0.1
REFRESH_MIN_CHANGES = 1000
MEMO_SIZE = 4096  # filters whose selectivity is remembered per statistics snapshot


@dataclass
class TenantStats:
    """One tenant's numbers at ``seq``."""

    seq: int
    nodes: int
    kinds: dict[str, int]
    edges: dict[str, int]
    vectors: dict[str, int]
    sample: list[dict[str, object]]
    taken: float = field(default_factory=time.time)
    _selectivity: dict[str, float] = field(default_factory=dict, repr=False)

    def degree(self, types: tuple[str, ...] | None) -> float:
        """Average edges per node over ``types`` (all types when ``None``), both directions."""
        total = sum(n for t, n in self.edges.items() if types is None or t in types)
        return 2.0 * total / max(self.nodes, 1)

    def selectivity(self, where: FilterNode | None, kind: str | None) -> float:
        """Estimated share of the tenant's nodes that match, in (0, 1]; remembered per filter
        (evaluating one over the sample costs about a millisecond)."""
        if where is None:
            return 1.0
        if kind is not None and referenced_fields(where) == {"kind"}:
            return max(self.kinds.get(kind, 0), 0.5) / max(self.nodes, 1)
        if not self.sample:
            return 1.0
        key = repr(where)
        known = self._selectivity.get(key)
        if known is None:
            hits = sum(1 for row in self.sample if matches(where, row))
            known = (hits + 0.5) / (len(self.sample) + 1.0)  # never 0: plans stay safe
            if len(self._selectivity) >= MEMO_SIZE:
                self._selectivity.clear()
            self._selectivity[key] = known
        return known


class Statistics:
    """Per-tenant statistics for one store, shared by every tenant handle."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._tenants: dict[str, TenantStats] = {}
        self._lock = threading.Lock()

    def of(self, tenant: str) -> TenantStats:
        """The tenant's statistics, recomputed if the store changed enough since."""
        seq = self.backend.seq()
        with self._lock:
            known = self._tenants.get(tenant)
        if known is not None and not self._stale(known, seq):
            return known
        fresh = self._compute(tenant, seq)
        with self._lock:
            self._tenants[tenant] = fresh
        return fresh

    @staticmethod
    def _stale(stats: TenantStats, seq: int) -> bool:
        changed = seq - stats.seq
        return changed > max(REFRESH_MIN_CHANGES, REFRESH_FRACTION * stats.nodes) or (
            stats.nodes < REFRESH_MIN_CHANGES and changed > 0)

    def _compute(self, tenant: str, seq: int) -> TenantStats:
        counts = self.backend.stats(tenant)
        kinds: dict[str, int] = counts["nodes"]
        sample = [_row(node) for node in self.backend.sample_nodes(tenant, SAMPLE_SIZE)]
        return TenantStats(seq, sum(kinds.values()), kinds, counts["edges"], counts["vectors"],
                           sample)


def _row(node: Node) -> dict[str, object]:
    return {**node.__dict__}
