"""Converged queries and their plans, as plain dataclasses.

A ``Query`` says *what* is wanted: a metadata filter, a graph part (anchors or "nodes matching
X", hops, edge types, direction), a semantic part (text or vector, k, threshold), a lexical
part (BM25), paging, and the user for personalisation. The planner turns it into a ``Plan``
(a strategy, by its name in ``strategies.STRATEGIES``, and its ordered steps with estimated
costs); the executor runs the steps and records what each actually took. ``explain()`` prints
both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ..errors import InvalidFilter, InvalidInput, InvalidVector
from ..model import DIRECTIONS, Direction, JSONObject
from ..validation import check_id, check_limit, check_number
from .fusion import check_weights

__all__ = ["GraphPart", "LexicalPart", "Plan", "Query", "SemanticPart", "Step"]

MAX_HOPS = 4
MAX_K = 10_000


def _optional_k(k: object) -> None:
    if k is not None:
        check_limit(k, "k", MAX_K)


def _strings(values: object, what: str) -> None:
    if not isinstance(values, tuple) or not all(isinstance(v, str) for v in values):
        raise InvalidInput(f"{what} must be a list of strings")


def _optional_filter(value: object, what: str) -> None:
    """A filter document's shape; ``QueryEngine.run`` parses it in full before the query is
    fingerprinted, so no hostile document reaches the cache key."""
    if value is not None and not isinstance(value, Mapping):
        raise InvalidFilter(f"{what} must be a JSON object, got {type(value).__name__}")


@dataclass(frozen=True)
class GraphPart:
    """Where in the graph to look: ``anchors`` (node ids) or the nodes ``matching`` a filter,
    then up to ``hops`` edges of ``types`` in ``direction``. With ``restrict`` (default) only
    nodes in that neighbourhood can be results; without, nearness only ranks them."""

    anchors: tuple[str, ...] = ()
    matching: JSONObject | None = None
    hops: int = 1
    types: tuple[str, ...] | None = None
    direction: Direction = "both"
    restrict: bool = True

    def __post_init__(self) -> None:
        if not self.anchors and self.matching is None:
            raise InvalidInput("a graph part needs anchors or a matching filter")
        _strings(self.anchors, "anchors")
        for anchor in self.anchors:
            check_id(anchor)
        if self.types is not None:
            _strings(self.types, "edge types")
        _optional_filter(self.matching, "matching")
        if isinstance(self.hops, bool) or not isinstance(self.hops, int) \
                or not 1 <= self.hops <= MAX_HOPS:
            raise InvalidInput(f"hops must be an integer from 1 to {MAX_HOPS}")
        if self.direction not in DIRECTIONS:
            raise InvalidInput(f"direction must be one of {DIRECTIONS}")


@dataclass(frozen=True)
class SemanticPart:
    """Similarity to ``text`` (embedded by the store's provider) or to ``vector``; hits below
    ``threshold`` are dropped. ``k`` candidates are taken before fusion (default: the
    planner's over-fetch of the query's limit)."""

    text: str | None = None
    vector: tuple[float, ...] | None = None
    k: int | None = None
    threshold: float | None = None
    space: str = "text"

    def __post_init__(self) -> None:
        if (self.text is None) == (self.vector is None):
            raise InvalidInput("a semantic part needs text or a vector, not both")
        if self.text is not None and (not isinstance(self.text, str) or not self.text.strip()):
            raise InvalidInput("semantic text must be a non-empty string")
        if self.vector is not None:
            try:
                np.asarray(self.vector, dtype=np.float32).reshape(-1)
            except (TypeError, ValueError) as exc:
                raise InvalidVector(f"the query vector must be numbers: {exc}") from exc
        _optional_k(self.k)
        if self.threshold is not None:
            check_number("query", "threshold", self.threshold)


@dataclass(frozen=True)
class LexicalPart:
    """BM25 over node text: every word of ``text`` counts, none is syntax."""

    text: str
    k: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise InvalidInput("lexical text must be a non-empty string")
        _optional_k(self.k)


@dataclass(frozen=True)
class Query:
    """A converged query (see the module docstring). ``strategy`` forces one by name (for
    evaluation and comparison; the planner refuses names not registered); ``None`` lets the
    planner choose. ``weights`` are the fusion weights per retriever (``dense``, ``lexical``,
    ``graph``, ``activation``); ``multi_hop`` brings in passages that share entities with the
    top hits (spreading activation)."""

    where: JSONObject | None = None
    kind: str | None = None
    graph: GraphPart | None = None
    semantic: SemanticPart | None = None
    lexical: LexicalPart | None = None
    limit: int = 10
    offset: int = 0
    user: str | None = None
    strategy: str | None = None
    weights: dict[str, float] | None = None
    multi_hop: bool = False
    use_cache: bool = True

    def __post_init__(self) -> None:
        if self.graph is None and self.semantic is None and self.lexical is None \
                and self.where is None and self.kind is None:
            raise InvalidInput("a query needs at least one of: where/kind, graph, semantic, "
                               "lexical")
        if self.strategy is not None and (not isinstance(self.strategy, str)
                                          or not self.strategy):
            raise InvalidInput("strategy must be the name of a registered strategy")
        self._check_inputs()

    def _check_inputs(self) -> None:
        """Shapes and types of what the cache key hashes (the filters are parsed in full by
        ``QueryEngine.run`` before the key is made)."""
        _optional_filter(self.where, "where")
        if self.kind is not None and not isinstance(self.kind, str):
            raise InvalidInput(f"kind must be a string, got {type(self.kind).__name__}")
        if self.user is not None:
            check_id(self.user)
        if self.weights is not None:
            if not isinstance(self.weights, Mapping):
                raise InvalidInput("weights must map retriever names to numbers")
            check_weights(self.weights)

    @property
    def retrievers(self) -> tuple[str, ...]:
        """The rankings this query fuses."""
        parts = [("dense", self.semantic), ("lexical", self.lexical), ("graph", self.graph)]
        return tuple(name for name, part in parts if part is not None)

    def fingerprint(self) -> str:
        """A hash of the normalised query: equal queries share cache entries."""
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:32]

    def canonical(self) -> str:
        """The query as sorted JSON, a vector as its hash (no deep copies: this runs on every
        cached query)."""
        body = _shallow(self)
        body.pop("use_cache")
        for name in ("graph", "lexical", "semantic"):
            part = getattr(self, name)
            body[name] = None if part is None else _shallow(part)
        if self.semantic is not None and self.semantic.vector is not None:
            vector = np.asarray(self.semantic.vector, dtype=np.float32)
            semantic = _shallow(self.semantic)
            semantic["vector"] = hashlib.sha256(vector.tobytes()).hexdigest()
            body["semantic"] = semantic
        return json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)


def _shallow(part: object) -> dict[str, object]:
    return {f.name: getattr(part, f.name) for f in fields(part)}  # type: ignore[arg-type]


@dataclass
class Step:
    """One step of a plan: what it does, its estimated cost (ms) and rows, and after
    execution its actual time and output size."""

    name: str
    detail: dict[str, Any] = field(default_factory=dict)
    estimate_ms: float = 0.0
    estimate_rows: int = 0
    actual_ms: float | None = None
    actual_rows: int | None = None


@dataclass
class Plan:
    """A strategy with its steps and total estimated cost, the alternatives the planner
    weighed (strategy -> estimated ms), and the over-fetch factor it chose."""

    strategy: str
    steps: list[Step]
    estimate_ms: float
    overfetch: int
    alternatives: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    actual_ms: float | None = None

    def render(self) -> str:
        """The plan as text, for ``explain()``."""
        lines = [f"strategy: {self.strategy}  (est {self.estimate_ms:.2f} ms"
                 + (f", actual {self.actual_ms:.2f} ms" if self.actual_ms is not None else "")
                 + f", over-fetch x{self.overfetch})", f"why: {self.reason}"]
        for number, step in enumerate(self.steps, start=1):
            actual = "" if step.actual_ms is None else (
                f"  actual {step.actual_ms:.2f} ms, {step.actual_rows} rows")
            details = " ".join(f"{k}={v}" for k, v in step.detail.items())
            lines.append(f"  {number}. {step.name:<16} est {step.estimate_ms:.2f} ms, "
                         f"{step.estimate_rows} rows{actual}  {details}".rstrip())
        if self.alternatives:
            lines.append("alternatives: " + ", ".join(
                f"{name} {cost:.2f} ms" for name, cost in sorted(self.alternatives.items(),
                                                                 key=lambda kv: kv[1])))
        return "\n".join(lines)
