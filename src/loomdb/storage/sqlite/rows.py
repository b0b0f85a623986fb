"""Rows in and out of SQLite: the column lists, props as JSON text, and decoding rows into
model objects (shared by the backend and its bulk scans)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ...model import Edge, JSONObject, Node
from ..props import encode_props as shared_encode

__all__ = ["EDGE_COLUMNS", "EDGE_FROM", "EDGE_SELECT", "NODE_COLUMNS", "decode_edge",
           "decode_node", "decode_props", "encode_props"]

NODE_COLUMNS = (
    "n.id, n.kind, n.text, n.props, n.source, n.category, n.confidence, n.strength, "
    "n.access_count, n.created, n.updated, n.last_accessed, n.tenant"
)
EDGE_FROM = "FROM edges e JOIN nodes s ON s.nid = e.src JOIN nodes d ON d.nid = e.dst"
EDGE_COLUMNS = (
    "s.id, d.id, e.type, e.weight, e.confidence, e.props, e.created, e.last_used, e.tenant"
)
EDGE_SELECT = f"SELECT {EDGE_COLUMNS} {EDGE_FROM}"


def encode_props(value: object) -> str:
    """Props as JSON text, refusing what SQLite's JSON functions would not give back unchanged."""
    return shared_encode(value, "SQLite's JSON truncates them")


def decode_props(text: str) -> JSONObject:
    return {} if text == "{}" else json.loads(text)


def decode_node(row: Sequence[Any]) -> Node:
    return Node(
        id=row[0], kind=row[1], text=row[2], props=decode_props(row[3]), source=row[4],
        category=row[5], confidence=row[6], strength=row[7], access_count=row[8],
        created=row[9], updated=row[10], last_accessed=row[11], tenant=row[12],
    )


def decode_edge(row: Sequence[Any]) -> Edge:
    return Edge(
        src=row[0], dst=row[1], type=row[2], weight=row[3], confidence=row[4],
        props=decode_props(row[5]), created=row[6], last_used=row[7], tenant=row[8],
    )
