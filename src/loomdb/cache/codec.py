"""A JSON codec for search results, for caches shared between processes (Redis).

JSON and never pickle: whoever can write to a shared Redis must not be able to run code in our
process by planting a value. The format names every field (taken from the dataclasses, so it
follows the model), and Python's ``json`` writes floats with ``repr``, so a round trip is exact:
floats (NaN and infinities too), ``None``, nested props and any Unicode text.

``FORMAT`` is part of every cache key, so processes on another format never read our values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from ..model import Citation, Hit, Node

__all__ = ["FORMAT", "MalformedValue", "decode_hits", "encode_hits"]

FORMAT = 1

_NODE_FIELDS = tuple(f.name for f in fields(Node))
_CITATION_FIELDS = tuple(f.name for f in fields(Citation))


class MalformedValue(ValueError):
    """Bytes that are not a list of hits in this format (corrupt, or written by something else)."""


def encode_hits(hits: Sequence[Hit]) -> bytes:
    """The hits as UTF-8 JSON."""
    payload = [_encode_hit(hit) for hit in hits]
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def decode_hits(data: bytes | str) -> list[Hit]:
    """Hits from ``encode_hits`` output; ``MalformedValue`` for anything else."""
    try:
        payload = json.loads(data)
    except ValueError as exc:  # includes UnicodeDecodeError
        raise MalformedValue(f"a cached result is not JSON: {exc}") from exc
    if not isinstance(payload, list):
        raise MalformedValue("a cached result is not a JSON list")
    try:
        return [_decode_hit(item) for item in payload]
    except (TypeError, KeyError) as exc:
        raise MalformedValue(f"a cached result is not a list of hits: {exc!r}") from exc


def _encode_hit(hit: Hit) -> dict[str, Any]:
    citation = hit.citation
    return {
        "node": {name: getattr(hit.node, name) for name in _NODE_FIELDS},
        "score": hit.score,
        "scores": hit.scores,
        "citation": None if citation is None else {n: getattr(citation, n) for n in
                                                   _CITATION_FIELDS},
    }


def _decode_hit(item: dict[str, Any]) -> Hit:
    citation = item["citation"]
    return Hit(
        node=Node(**item["node"]),
        score=item["score"],
        scores=item["scores"],
        citation=None if citation is None else Citation(**citation),
    )
