"""Legacy records <-> loomdb nodes and edges, and the ``_legacy`` props key that makes the
round trip exact.

A concept is a node (``content`` is its text), an association an edge (``assoc_type`` is its
type). What loomdb cannot hold as is goes in ``props["_legacy"]``: ``raw`` originals (an
ISO-8601 or integer timestamp where loomdb keeps a float, an integer confidence, ``-0.0``, a
record's unknown keys), ``absent`` fields, an association ``key`` that is not ``"src:dst"``,
an embedding's ``vector_ints``. Export writes an original back while loomdb's value is still
the one the import derived from it. Nodes and edges that did not come from a legacy file carry
their kind and props under the record key ``"_loomdb"``. The top level of ``embeddings.json``
lives on one reserved header node when the vector space cannot carry it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, NoReturn, TypeGuard

import numpy as np
import numpy.typing as npt

from ...errors import InvalidInput
from ...model import (
    Edge,
    JSONObject,
    JSONValue,
    Node,
    VectorSpace,
    prop_object,
    prop_str,
    prop_strs,
)
from ...validation import MAX_ID_LENGTH

__all__ = [
    "ASSOCIATIONS",
    "CONCEPTS",
    "EMBEDDINGS",
    "HEADER_ID",
    "Embeddings",
    "association_edge",
    "association_item",
    "concept_node",
    "concept_record",
    "default_header",
    "exported_header",
    "fail",
    "has_nul",
    "header_node",
    "is_header",
    "valid_id",
    "vector_values",
    "with_vector_ints",
]


@dataclass
class Embeddings:
    """embeddings.json, checked: ids, a float64 matrix, and where it held integers."""

    header: JSONObject | None  # None: there was no embeddings.json
    ids: list[str]
    matrix: npt.NDArray[np.float64]
    ints: dict[str, list[int]]

CONCEPTS, ASSOCIATIONS, EMBEDDINGS = "concepts.json", "associations.json", "embeddings.json"
LEGACY_KEY = "_legacy"
NATIVE_KEY = "_loomdb"
HEADER_ID = "loomdb:legacy:embeddings.json"
HEADER_KIND = "legacy_header"
ASSOC_TYPES = ("semantic", "causal", "temporal", "hierarchical", "compositional")
INT64 = 2**63

AttrValue = str | int | float | None  # a model attribute a legacy field maps to
# Node(**attrs) / Edge(**attrs): each attribute has its own type, which one dict cannot spell
Attrs = dict[str, Any]


def fail(file: str, key: str, problem: str) -> NoReturn:
    """Refuse an entry of a legacy file, naming the file and the entry."""
    raise InvalidInput(f"{file} entry {key!r:.100}: {problem}")


class _Malformed(Exception):
    """A legacy value loomdb cannot accept; the caller adds the file and the key."""


# -- field conversions: legacy value -> (loomdb value, whether it is kept exactly) ----------


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise _Malformed(f"{value!r} is not a finite number")
    return value


def _real(value: JSONValue) -> tuple[float | None, bool]:
    """Optional floats (SQLite REAL): ints become floats, -0.0 loses its sign in SQLite."""
    if value is None:
        return None, True
    if type(value) is float:
        return _finite(value), not (value == 0 and math.copysign(1.0, value) < 0)
    if type(value) is int:
        try:
            return float(value), False
        except OverflowError:
            return None, False
    return None, False


def _parse_time(text: str) -> float | None:
    """Unix seconds of an ISO-8601 string (naive means UTC), or None if it is not one."""
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def _time(value: JSONValue) -> tuple[float | None, bool]:
    """Timestamps: Unix seconds as float, int, ISO-8601 string or null in legacy files."""
    if isinstance(value, str):
        return _parse_time(value), False
    return _real(value)


def _text(value: JSONValue) -> tuple[str | None, bool]:
    return (value, True) if value is None or type(value) is str else (None, False)


def _count(value: JSONValue) -> tuple[int, bool]:
    if type(value) is int and -INT64 <= value < INT64:
        return value, True
    if type(value) is float and _finite(value).is_integer() and abs(value) < INT64:
        return int(value), False
    return 0, False


def _weight(value: JSONValue) -> tuple[float, bool]:
    weight, exact = _real(value)
    return (1.0, False) if weight is None else (weight, exact)


def _assoc_type(value: JSONValue) -> tuple[str, bool]:
    """Association types are names; older (Rust) files hold their number 0-4."""
    if type(value) is str and value:
        return value, True
    if type(value) is int:
        return ASSOC_TYPES[value] if 0 <= value < len(ASSOC_TYPES) else ASSOC_TYPES[0], False
    raise _Malformed("assoc_type must be a non-empty string or an integer")


@dataclass(frozen=True)
class Field:
    """A legacy record key and the model attribute it maps to. ``stamped``: the store sets
    the attribute when it is None, so an import-time None cannot be compared on export."""

    name: str
    attr: str
    convert: Callable[[JSONValue], tuple[AttrValue, bool]]
    stamped: bool = False

    @property
    def default(self) -> AttrValue:
        """The loomdb value of a record that lacks this key."""
        return self.convert(None)[0]

    def load(self, value: JSONValue) -> tuple[AttrValue, bool]:
        """The loomdb value of ``value``, and whether export can write it back as it is."""
        converted, exact = self.convert(value)
        return converted, exact and not (self.stamped and converted is None)


CONCEPT_FIELDS = (
    Field("content", "text", _text),
    Field("created", "created", _time, stamped=True),
    Field("access_count", "access_count", _count),
    Field("strength", "strength", _real),
    Field("last_accessed", "last_accessed", _time),
    Field("source", "source", _text),
    Field("category", "category", _text),
    Field("confidence", "confidence", _real),
)
ASSOCIATION_FIELDS = (
    Field("assoc_type", "type", _assoc_type),
    Field("weight", "weight", _weight),
    Field("confidence", "confidence", _real),
    Field("created", "created", _time, stamped=True),
    Field("last_used", "last_used", _time),
)
CONCEPT_KEYS = frozenset({"id", NATIVE_KEY} | {f.name for f in CONCEPT_FIELDS})
ASSOCIATION_KEYS = frozenset(
    {"source_id", "target_id", NATIVE_KEY} | {f.name for f in ASSOCIATION_FIELDS}
)


# -- records -> nodes and edges -------------------------------------------------------------


def _split(
    record: JSONObject, fields: Iterable[Field], known: frozenset[str]
) -> tuple[Attrs, JSONObject]:
    """Model attributes from a record, and the ``_legacy`` entry for what they lose."""
    attrs: Attrs = {}
    raw: JSONObject = {}
    absent: list[JSONValue] = []
    for field in fields:
        if field.name not in record:
            attrs[field.attr] = field.default
            absent.append(field.name)
            continue
        attrs[field.attr], exact = field.load(record[field.name])
        if not exact:
            raw[field.name] = record[field.name]
    raw.update((k, v) for k, v in record.items() if k not in known)
    entry: JSONObject = {"raw": raw, "absent": absent}
    return attrs, {k: v for k, v in entry.items() if v}


def _native(record: JSONObject, with_kind: bool) -> JSONObject | None:
    """The ``_loomdb`` part of a record, if it has exactly the shape export writes."""
    value = record.get(NATIVE_KEY)
    if not isinstance(value, dict) or not value or set(value) - {"kind", "props"}:
        return None
    kind, props = value.get("kind"), value.get("props")
    if "kind" in value and not (with_kind and isinstance(kind, str) and kind != "concept"
                                and kind):
        return None
    if "props" in value and not (isinstance(props, dict) and props and LEGACY_KEY not in props):
        return None
    return value


def _props(
    file: str, key: str, native: JSONObject | None, legacy: JSONObject
) -> JSONObject:
    props = dict(prop_object(native, "props")) if native else {}
    if legacy:
        props[LEGACY_KEY] = legacy
    if has_nul(props):
        fail(file, key, "a value kept in props holds a NUL character, which props cannot")
    return props


def has_nul(value: JSONValue) -> bool:
    """Whether a JSON value holds a NUL character anywhere, keys included."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    return isinstance(value, list) and any(map(has_nul, value))


def _entry(file: str, key: str, record: JSONValue) -> JSONObject:
    if not isinstance(record, dict):
        fail(file, key, "an entry must be a JSON object")
    return record


def _parse(
    file: str, key: str, record: JSONObject, fields: Iterable[Field], known: frozenset[str]
) -> tuple[Attrs, JSONObject, JSONObject | None]:
    """A record's model attributes, its ``_legacy`` entry and its ``_loomdb`` part."""
    native = _native(record, with_kind=file == CONCEPTS)
    try:
        attrs, legacy = _split(record, fields, known if native else known - {NATIVE_KEY})
    except _Malformed as exc:
        fail(file, key, str(exc))
    return attrs, legacy, native


def _note_id(legacy: JSONObject, record: JSONObject) -> None:
    """Keep in ``legacy`` a record ``id`` that is not its key: the original, or its absence."""
    if "id" in record:
        raw = legacy.setdefault("raw", {})
        if isinstance(raw, dict):  # _split made it a dict, if it made one
            raw["id"] = record["id"]
    else:
        absent = legacy.setdefault("absent", [])
        if isinstance(absent, list):  # likewise
            absent.append("id")


def concept_node(key: str, record: JSONValue) -> Node:
    """The node of ``concepts.json`` entry ``key``."""
    entry = _entry(CONCEPTS, key, record)
    attrs, legacy, native = _parse(CONCEPTS, key, entry, CONCEPT_FIELDS, CONCEPT_KEYS)
    if entry.get("id") != key:
        _note_id(legacy, entry)
    kind = (prop_str(native, "kind") if native else None) or "concept"
    return Node(id=key, kind=kind, props=_props(CONCEPTS, key, native, legacy), **attrs)


def association_edge(key: str, record: JSONValue) -> Edge:
    """The edge of ``associations.json`` entry ``key``."""
    entry = _entry(ASSOCIATIONS, key, record)
    attrs, legacy, native = _parse(ASSOCIATIONS, key, entry, ASSOCIATION_FIELDS,
                                   ASSOCIATION_KEYS)
    src, dst = entry.get("source_id"), entry.get("target_id")
    if not (valid_id(src) and valid_id(dst)):
        fail(ASSOCIATIONS, key, "source_id and target_id must be concept ids")
    if key != f"{src}:{dst}":
        legacy["key"] = key
    return Edge(src=src, dst=dst, props=_props(ASSOCIATIONS, key, native, legacy), **attrs)


def with_vector_ints(node: Node, positions: list[int]) -> Node:
    """``node``, remembering where its embedding held JSON integers (to write them back)."""
    legacy: JSONObject = {**_legacy_of(node.props), "vector_ints": [*positions]}
    return replace(node, props={**node.props, LEGACY_KEY: legacy})


def valid_id(value: object) -> TypeGuard[str]:
    return type(value) is str and 0 < len(value) <= MAX_ID_LENGTH and "\x00" not in value


# -- nodes and edges -> records -------------------------------------------------------------


class _Absent(enum.Enum):
    """What ``_restore`` returns to leave a key out of the record."""

    KEY = enum.auto()


_ABSENT: Final = _Absent.KEY


def _restore(field: Field, current: AttrValue, legacy: JSONObject) -> JSONValue | _Absent:
    """The legacy value to write for ``field``: the original while loomdb's value is still
    the one derived from it, else loomdb's; ``_ABSENT`` to leave the key out."""
    raw = prop_object(legacy, "raw")
    if field.name in prop_strs(legacy, "absent"):
        if field.stamped or current == field.default:
            return _ABSENT
    elif field.name in raw:
        derived = field.convert(raw[field.name])[0]
        if current == derived or (derived is None and field.stamped):
            return raw[field.name]
    return current


def _legacy_of(props: JSONObject) -> JSONObject:
    return prop_object(props, LEGACY_KEY)


def _record(
    head: JSONObject, fields: Iterable[Field], item: Node | Edge, kind: str | None
) -> JSONObject:
    legacy = _legacy_of(item.props)
    record = dict(head)
    for field in fields:
        value = _restore(field, getattr(item, field.attr), legacy)
        if value is not _ABSENT:
            record[field.name] = value
    raw = prop_object(legacy, "raw")
    record.update((k, v) for k, v in raw.items() if k not in record and k not in head)
    native: JSONObject = {} if kind in (None, "concept") else {"kind": kind}
    props = {k: v for k, v in item.props.items() if k != LEGACY_KEY}
    if props:
        native["props"] = props
    if native:
        record[NATIVE_KEY] = native
    return record


def concept_record(node: Node) -> JSONObject:
    """The ``concepts.json`` record of ``node``."""
    legacy = _legacy_of(node.props)
    record = _record({"id": node.id}, CONCEPT_FIELDS, node, node.kind)
    raw = prop_object(legacy, "raw")
    if "id" in prop_strs(legacy, "absent"):
        del record["id"]
    elif "id" in raw:
        record["id"] = raw["id"]
    return record


def association_item(edge: Edge) -> tuple[str, JSONObject]:
    """An edge's key in associations.json and its record."""
    key = _legacy_of(edge.props).get("key", f"{edge.src}:{edge.dst}")
    head: JSONObject = {"source_id": edge.src, "target_id": edge.dst}
    return str(key), _record(head, ASSOCIATION_FIELDS, edge, None)


def vector_values(values: list[float], node: Node) -> list[float]:
    """An embedding's values, with those that were JSON integers on import integers again."""
    positions = _legacy_of(node.props).get("vector_ints")
    for i in positions if isinstance(positions, list) else ():
        if isinstance(i, int) and i < len(values) and values[i].is_integer():
            values[i] = int(values[i])
    return values


# -- the top level of embeddings.json <-> the header node -----------------------------------


def default_header(model: str | None) -> JSONObject:
    """The top level of embeddings.json for a space of ``model``, when no other was kept."""
    return {"provider": model, "embeddings": None}


def header_node(header: JSONObject, model: str | None) -> Node:
    """The reserved node keeping ``header``, valid while the space's model stays ``model``."""
    return Node(HEADER_ID, kind=HEADER_KIND,
                props={LEGACY_KEY: {"header": header, "model": model}})


def is_header(node: Node) -> bool:
    return node.id == HEADER_ID and node.kind == HEADER_KIND


def exported_header(stored: Node | None, space: VectorSpace | None) -> JSONObject:
    """The top level of embeddings.json: as imported (kept on the ``stored`` header node)
    while the space's model is unchanged."""
    model = space.model if space else None
    entry = _legacy_of(stored.props) if stored is not None else {}
    header = entry.get("header")
    if not isinstance(header, dict) or entry.get("model") != model:
        return default_header(model)
    return header if "embeddings" in header or space is None else {**header, "embeddings": None}
