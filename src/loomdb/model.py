"""The data model: nodes, edges, vector spaces, search hits and graph paths.

Plain frozen dataclasses; storage backends and surfaces exchange these and nothing else.
Times are Unix seconds (float). ``props`` is any JSON object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "Citation",
    "Direction",
    "Edge",
    "Hit",
    "JSONObject",
    "JSONScalar",
    "JSONValue",
    "Metric",
    "Node",
    "NodeRef",
    "Path",
    "Quantization",
    "VectorSpace",
    "citation_of",
    "prop_int",
    "prop_number",
    "prop_object",
    "prop_str",
    "prop_strs",
]

Metric = Literal["cosine", "ip", "l2"]
Quantization = Literal["f32", "f16", "i8", "b1"]
Direction = Literal["out", "in", "both"]
JSONScalar = str | int | float | bool | None
JSONValue = JSONScalar | list["JSONValue"] | dict[str, "JSONValue"]
JSONObject = dict[str, JSONValue]  # node and edge props, and any other JSON object

METRICS: tuple[str, ...] = ("cosine", "ip", "l2")
QUANTIZATIONS: tuple[str, ...] = ("f32", "f16", "i8", "b1")
DIRECTIONS: tuple[str, ...] = ("out", "in", "both")


@dataclass(frozen=True)
class Node:
    """A node of the graph: a document, chunk, message, chat, entity, concept or user kind.

    ``created``/``updated`` are set by the store when left as ``None``.
    """

    id: str
    kind: str = "concept"
    text: str | None = None
    props: JSONObject = field(default_factory=dict)
    source: str | None = None
    category: str | None = None
    confidence: float | None = None
    strength: float | None = None
    access_count: int = 0
    created: float | None = None
    updated: float | None = None
    last_accessed: float | None = None
    tenant: str = "default"


NodeRef = str | Node  # every API method that takes a node id also takes the Node itself


@dataclass(frozen=True)
class Edge:
    """A typed, weighted, directed edge ``src -> dst``; ``(src, dst, type)`` is its identity."""

    src: str
    dst: str
    type: str = "related"
    weight: float = 1.0
    confidence: float | None = None
    props: JSONObject = field(default_factory=dict)
    created: float | None = None
    last_used: float | None = None
    tenant: str = "default"


@dataclass(frozen=True)
class VectorSpace:
    """A named vector space: every vector in it has this model, dimension and metric.

    ``quantization`` is an index option (the stored vectors are always exact); ``storage`` is
    the dtype the raw vectors are kept in.
    """

    name: str
    dim: int
    model: str = "unknown"
    metric: Metric = "cosine"
    quantization: Quantization = "f32"
    storage: Literal["float32", "float16", "float64"] = "float32"


@dataclass(frozen=True)
class Citation:
    """Where a hit comes from: a document, a page and a character span in it."""

    document: str
    page: int | None = None
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True)
class Hit:
    """A search result: the node, its fused score (higher is better) and each retriever's.

    A chunk's citation comes from its props ``document``, ``page``, ``start`` and ``end``
    (the ingestion pipeline sets them); other nodes have none.
    """

    node: Node
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    citation: Citation | None = None

    @classmethod
    def of(cls, node: Node, score: float, scores: dict[str, float]) -> Hit:
        """A hit with the node's citation filled in, if it has one."""
        return cls(node=node, score=score, scores=scores, citation=citation_of(node))

    @property
    def id(self) -> str:
        return self.node.id


def citation_of(node: Node) -> Citation | None:
    """Where a chunk comes from, read from its props; ``None`` when it does not say."""
    document = prop_str(node.props, "document")
    if node.kind != "chunk" or document is None:
        return None
    props = node.props
    return Citation(document, prop_int(props, "page"), prop_int(props, "start"),
                    prop_int(props, "end"))


# -- reading props: JSON values, narrowed to what the reader expects ------------------------

def prop_int(props: JSONObject, key: str) -> int | None:
    """``props[key]`` if it is an integer (booleans are not), else ``None``."""
    value = props.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def prop_number(props: JSONObject, key: str) -> float | None:
    """``props[key]`` if it is a number (booleans are not), else ``None``."""
    value = props.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def prop_str(props: JSONObject, key: str) -> str | None:
    """``props[key]`` if it is a string, else ``None``."""
    value = props.get(key)
    return value if isinstance(value, str) else None


def prop_strs(props: JSONObject, key: str) -> list[str]:
    """The strings in the list ``props[key]`` (``[]`` when it is not a list)."""
    value = props.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def prop_object(props: JSONObject, key: str) -> JSONObject:
    """``props[key]`` if it is a JSON object, else an empty one."""
    value = props.get(key)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Path:
    """A path through the graph: ``nodes[i] -> nodes[i+1]`` is carried by ``edges[i]``."""

    nodes: list[Node]
    edges: list[Edge]

    @property
    def cost(self) -> float:
        """Sum of edge weights (the cost a weighted search minimises)."""
        return math.fsum(e.weight for e in self.edges)

    def __len__(self) -> int:
        return len(self.edges)
