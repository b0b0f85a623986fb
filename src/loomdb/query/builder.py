"""Building a ``Query``: from keyword arguments (``db.query(text=..., near=...)``) or fluently
(``db.find().similar_to("...").near("entity:...").limit(5).run()``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol, TypedDict

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput, InvalidVector
from ..model import Direction, Hit, JSONObject, JSONValue
from .plan import GraphPart, LexicalPart, Plan, Query, SemanticPart

__all__ = ["QUERY_ARGUMENTS", "QueryArguments", "QueryBuilder", "Queryable", "query_from_arguments"]


class Queryable(Protocol):
    """What a builder runs against: the facade's ``query`` and ``explain``."""

    def query(self, query: Query, /) -> list[Hit]: ...

    def explain(self, query: Query, /, *, execute: bool = True) -> Plan: ...


def _vector(value: npt.ArrayLike) -> tuple[float, ...]:
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidVector(f"the query vector must be numbers: {exc}") from exc
    if array.ndim != 1 or not len(array):
        raise InvalidInput("vector must be one non-empty row of numbers")
    return tuple(float(x) for x in array)


def _graph_part(near: str | Sequence[str] | None, matching: JSONObject | None, hops: int,
                edge_types: Sequence[str] | None, direction: Direction,
                restrict: bool) -> GraphPart | None:
    if near is None and matching is None:
        return None
    return GraphPart(_names(near, "near"), matching, hops,
                     _names(edge_types, "edge_types") or None, direction, restrict)


def _names(value: str | Sequence[str] | None, what: str) -> tuple[str, ...]:
    """One name or a list of them (node ids, edge types) as a tuple."""
    if value is None or isinstance(value, str):
        return () if value is None else (value,)
    if not isinstance(value, list | tuple):
        raise InvalidInput(f"{what} must be a string or a list of strings, got "
                           f"{type(value).__name__}")
    return tuple(value)


class QueryArguments(TypedDict, total=False):
    """``db.query``'s keywords (see ``query_from_arguments``)."""

    text: str | None
    vector: npt.ArrayLike | None
    lexical: str | bool | None
    semantic: bool
    where: JSONObject | None
    kind: str | None
    near: str | Sequence[str] | None
    matching: JSONObject | None
    hops: int
    edge_types: Sequence[str] | None
    direction: Direction
    restrict: bool
    k: int
    offset: int
    threshold: float | None
    space: str
    user: str | None
    strategy: str | None
    weights: dict[str, float] | None
    multi_hop: bool
    cache: bool


QUERY_ARGUMENTS = frozenset(QueryArguments.__annotations__)


def query_from_arguments(
    text: str | None = None, *, vector: npt.ArrayLike | None = None,
    lexical: str | bool | None = None, semantic: bool = True, where: JSONObject | None = None,
    kind: str | None = None, near: str | Sequence[str] | None = None,
    matching: JSONObject | None = None,
    hops: int = 1, edge_types: Sequence[str] | None = None, direction: Direction = "both",
    restrict: bool = True, k: int = 10, offset: int = 0, threshold: float | None = None,
    space: str = "text", user: str | None = None, strategy: str | None = None,
    weights: dict[str, float] | None = None, multi_hop: bool = False, cache: bool = True,
) -> Query:
    """A Query from ``db.query``'s keywords: ``text`` feeds the semantic part and (unless
    ``lexical=False`` or other words are given) the lexical part; ``near``/``matching`` make
    the graph part."""
    semantic_part = None
    if semantic and (text is not None or vector is not None):
        semantic_part = SemanticPart(text if vector is None else None,
                                     None if vector is None else _vector(vector),
                                     threshold=threshold, space=space)
    words = lexical if isinstance(lexical, str) else (text if lexical in (None, True) else None)
    lexical_part = LexicalPart(words) if words else None
    return Query(where=where, kind=kind, graph=_graph_part(near, matching, hops, edge_types,
                                                           direction, restrict),
                 semantic=semantic_part, lexical=lexical_part, limit=k, offset=offset,
                 user=user, strategy=strategy, weights=weights, multi_hop=multi_hop,
                 use_cache=cache)


class QueryBuilder:
    """A fluent Query: each method returns a new builder; ``run()`` answers it."""

    def __init__(self, db: Queryable, parts: dict[str, Any] | None = None) -> None:
        self._db = db
        self._parts: dict[str, Any] = parts or {}

    def _with(self, **changes: Any) -> QueryBuilder:
        return QueryBuilder(self._db, {**self._parts, **changes})

    def where(self, filter: JSONObject | None = None,  # noqa: A002
              **equals: JSONValue) -> QueryBuilder:
        merged = {**(filter or {}), **equals}
        return self._with(where=merged or None)

    def kind(self, kind: str) -> QueryBuilder:
        return self._with(kind=kind)

    def similar_to(self, text_or_vector: str | npt.ArrayLike, *, k: int | None = None,
                   threshold: float | None = None, space: str = "text") -> QueryBuilder:
        text = text_or_vector if isinstance(text_or_vector, str) else None
        vector = None if text is not None else _vector(text_or_vector)
        return self._with(semantic=SemanticPart(text, vector, k, threshold, space))

    def matching(self, words: str, *, k: int | None = None) -> QueryBuilder:
        return self._with(lexical=LexicalPart(words, k))

    def near(self, *anchors: str, hops: int = 1, types: Sequence[str] | None = None,
             direction: Direction = "both", restrict: bool = True) -> QueryBuilder:
        return self._with(graph=GraphPart(tuple(anchors), None, hops,
                                          tuple(types) if types else None, direction,
                                          restrict))

    def around(self, matching: JSONObject, *, hops: int = 1,
               types: Sequence[str] | None = None, direction: Direction = "both",
               restrict: bool = True) -> QueryBuilder:
        return self._with(graph=GraphPart((), matching, hops, tuple(types) if types else None,
                                          direction, restrict))

    def for_user(self, user: str) -> QueryBuilder:
        return self._with(user=user)

    def limit(self, limit: int) -> QueryBuilder:
        return self._with(limit=limit)

    def offset(self, offset: int) -> QueryBuilder:
        return self._with(offset=offset)

    def strategy(self, strategy: str) -> QueryBuilder:
        return self._with(strategy=strategy)

    def weights(self, **weights: float) -> QueryBuilder:
        return self._with(weights=weights)

    def multi_hop(self, enabled: bool = True) -> QueryBuilder:
        return self._with(multi_hop=enabled)

    def no_cache(self) -> QueryBuilder:
        return self._with(use_cache=False)

    def build(self) -> Query:
        return Query(**self._parts)

    def run(self) -> list[Hit]:
        return self._db.query(self.build())

    def explain(self, execute: bool = True) -> Plan:
        return self._db.explain(self.build(), execute=execute)

    def __repr__(self) -> str:
        return f"QueryBuilder({replace(self.build())!r})"
