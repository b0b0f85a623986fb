"""The retrieval strategies an evaluation compares, by name: the one place that says which
``db.query`` arguments each name means.

========================  ============================================================
``dense``                 MiniLM cosine only (``lexical=False``, plan ``vector-only``)
``bm25``                  BM25 only (``semantic=False``, plan ``lexical-only``)
``hybrid``                dense + BM25 fused by weighted RRF, plan chosen by the planner
                          (what ``db.query(text=...)`` does by default)
``hybrid+graph``          ``hybrid`` plus multi-hop: passages sharing entities with the
                          top hits join the fusion (spreading activation)
``hybrid-parallel``       ``hybrid`` with the parallel plan forced
``hybrid-sequential``     ``hybrid`` with the sequential plan forced (exact scoring of the
                          filtered candidates)
========================  ============================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import InvalidInput
from ..model import JSONObject
from ..query.builder import QueryArguments, query_from_arguments
from ..query.plan import Query

__all__ = ["DEFAULT_STRATEGIES", "STRATEGIES", "EvalStrategy", "resolve_strategy"]

RESERVED = frozenset({"text", "k", "cache", "where", "kind"})  # set per golden query by the runner


@dataclass(frozen=True)
class EvalStrategy:
    """A named way of asking: ``db.query`` keywords for a text query, and optionally the
    candidates each retriever takes before fusion (``depth``; default: the planner's
    over-fetch of k). Custom ones make experiments (weights, depth) comparable."""

    name: str
    arguments: QueryArguments = field(default_factory=lambda: QueryArguments())
    depth: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidInput("a strategy needs a name")
        clash = RESERVED & set(self.arguments)
        if clash:
            raise InvalidInput(f"strategy {self.name!r}: {sorted(clash)} are set per query "
                               "by the evaluation")
        if self.depth is not None and (isinstance(self.depth, bool)
                                       or not isinstance(self.depth, int)
                                       or not 1 <= self.depth <= 10_000):
            raise InvalidInput("depth must be an integer from 1 to 10,000")

    def query(self, text: str, *, k: int, where: JSONObject | None,
              kind: str | None) -> Query:
        """The uncached query this strategy asks for ``text``."""
        arguments: QueryArguments = {**self.arguments, "text": text, "where": where,
                                     "kind": kind, "k": k, "cache": False}
        built = query_from_arguments(**arguments)
        if self.depth is None:
            return built
        semantic = None if built.semantic is None else replace(built.semantic, k=self.depth)
        lexical = None if built.lexical is None else replace(built.lexical, k=self.depth)
        return replace(built, semantic=semantic, lexical=lexical)


STRATEGIES: dict[str, EvalStrategy] = {s.name: s for s in (
    EvalStrategy("dense", {"lexical": False, "strategy": "vector-only"},
                 description="MiniLM cosine only"),
    EvalStrategy("bm25", {"semantic": False, "strategy": "lexical-only"},
                 description="BM25 only"),
    EvalStrategy("hybrid", {}, description="dense + BM25, weighted RRF, planner's plan"),
    EvalStrategy("hybrid+graph", {"multi_hop": True},
                 description="hybrid + passages sharing entities with the top hits"),
    EvalStrategy("hybrid-parallel", {"strategy": "hybrid-parallel"},
                 description="hybrid, parallel plan forced"),
    EvalStrategy("hybrid-sequential", {"strategy": "hybrid-sequential"},
                 description="hybrid, sequential plan forced"),
)}
DEFAULT_STRATEGIES: tuple[str, ...] = ("dense", "bm25", "hybrid", "hybrid+graph")


def resolve_strategy(strategy: str | EvalStrategy) -> EvalStrategy:
    """A strategy by name (see the module docstring), or a custom one as it is."""
    if isinstance(strategy, EvalStrategy):
        return strategy
    if strategy not in STRATEGIES:
        raise InvalidInput(f"unknown strategy {strategy!r:.60}; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[strategy]
