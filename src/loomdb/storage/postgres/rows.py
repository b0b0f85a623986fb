"""Rows in and out: the column lists, decoding rows into model objects, encoding props and
refusing what PostgreSQL cannot hold (NUL in text) with a clear error instead of a driver one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ...errors import InvalidInput
from ...model import Edge, Node, VectorSpace
from ..props import encode_props as shared_encode

__all__ = ["EDGE_COLUMNS", "EDGE_FROM", "NODE_COLUMNS", "SPACE_COLUMNS", "check_text",
           "decode_edge", "decode_node", "decode_space", "encode_props", "number"]

NODE_COLUMNS = (
    "n.id, n.kind, n.text, n.props::text, n.source, n.category, n.confidence, n.strength, "
    "n.access_count, n.created, n.updated, n.last_accessed, n.tenant"
)
EDGE_FROM = "FROM edges e JOIN nodes s ON s.nid = e.src JOIN nodes d ON d.nid = e.dst"
EDGE_COLUMNS = (
    "s.id, d.id, e.type, e.weight, e.confidence, e.props::text, e.created, e.last_used, "
    "e.tenant"
)
SPACE_COLUMNS = "name, dim, model, metric, quantization, storage"


def encode_props(value: object) -> str:
    """Props as JSON text, refusing what a ``json`` column would not give back unchanged."""
    return shared_encode(value, "PostgreSQL text cannot")


def check_text(owner: str, values: Sequence[tuple[str, object]]) -> None:
    """``InvalidInput`` naming the field if a string holds NUL, which PostgreSQL cannot store
    (SQLite can: this is one of the few values the two backends accept differently)."""
    for name, value in values:
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(f"{owner}: {name} holds a NUL character, which PostgreSQL "
                               "text cannot store")


def number(value: Any, what: str) -> float | None:
    """A float column's value, or ``InvalidInput`` naming it."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    raise InvalidInput(f"{what} must be a number, got {type(value).__name__}")


def decode_node(row: Sequence[Any]) -> Node:
    return Node(
        id=row[0], kind=row[1], text=row[2], props=json.loads(row[3]), source=row[4],
        category=row[5], confidence=row[6], strength=row[7], access_count=row[8],
        created=row[9], updated=row[10], last_accessed=row[11], tenant=row[12],
    )


def decode_edge(row: Sequence[Any]) -> Edge:
    return Edge(
        src=row[0], dst=row[1], type=row[2], weight=row[3], confidence=row[4],
        props=json.loads(row[5]), created=row[6], last_used=row[7], tenant=row[8],
    )


def decode_space(row: Sequence[Any]) -> VectorSpace:
    return VectorSpace(name=row[0], dim=row[1], model=row[2], metric=row[3],
                       quantization=row[4], storage=row[5])
