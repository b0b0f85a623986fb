"""The legacy JSON layout loomdb replaces: ``concepts.json``, ``associations.json`` and
``embeddings.json`` in one directory, read and written so that a round trip is exact.

A concept is a node (``content`` is its text), an association an edge (``assoc_type`` is its
type), an embedding a vector in one space (created as float64, so no value is rounded).
Whatever loomdb cannot hold as is — an ISO-8601 or integer timestamp where loomdb keeps a float,
an integer confidence, ``-0.0``, a missing field, a record's unknown keys, an association key
that is not ``"src:dst"`` — is kept in the node's or edge's ``props["_legacy"]`` and restored on
export, as long as loomdb's own value is still the one the import derived from it. The top level
of ``embeddings.json`` (``provider``, ``vocabulary``...) lives on one reserved node when the
vector space cannot carry it. Nodes and edges that did not come from a legacy file carry their
kind and props to JSON under the record key ``"_loomdb"``, which the import reads back.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, NoReturn, TypeGuard

import numpy as np
import numpy.typing as npt

from ..database import Database
from ..errors import DimensionMismatch, InvalidInput, LoomError, ModelMismatch
from ..index.files import atomic_write
from ..model import Edge, Node, VectorSpace
from ..validation import MAX_ID_LENGTH, MAX_LIMIT

__all__ = ["export_legacy", "import_legacy"]

CONCEPTS, ASSOCIATIONS, EMBEDDINGS = "concepts.json", "associations.json", "embeddings.json"
LEGACY_KEY = "_legacy"
NATIVE_KEY = "_loomdb"
HEADER_ID = "loomdb:legacy:embeddings.json"
HEADER_KIND = "legacy_header"
ASSOC_TYPES = ("semantic", "causal", "temporal", "hierarchical", "compositional")
BATCH = 10_000
ALL_EDGES = 2**62
INT64 = 2**63
EXACT_INT = 2**53


class _Malformed(Exception):
    """A legacy value loomdb cannot accept; the caller adds the file and the key."""


def _fail(file: str, key: str, problem: str) -> NoReturn:
    raise InvalidInput(f"{file} entry {key!r:.100}: {problem}")


# -- field conversions: legacy value -> (loomdb value, whether it is kept exactly) ----------


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise _Malformed(f"{value!r} is not a finite number")
    return value


def _real(value: Any) -> tuple[float | None, bool]:
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


def _time(value: Any) -> tuple[float | None, bool]:
    """Timestamps: Unix seconds as float, int, ISO-8601 string or null in legacy files."""
    if isinstance(value, str):
        return _parse_time(value), False
    return _real(value)


def _text(value: Any) -> tuple[str | None, bool]:
    return (value, True) if value is None or type(value) is str else (None, False)


def _count(value: Any) -> tuple[int, bool]:
    if type(value) is int and -INT64 <= value < INT64:
        return value, True
    if type(value) is float and _finite(value).is_integer() and abs(value) < INT64:
        return int(value), False
    return 0, False


def _weight(value: Any) -> tuple[float, bool]:
    weight, exact = _real(value)
    return (1.0, False) if weight is None else (weight, exact)


def _assoc_type(value: Any) -> tuple[str, bool]:
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
    convert: Callable[[Any], tuple[Any, bool]]
    stamped: bool = False

    @property
    def default(self) -> Any:
        """The loomdb value of a record that lacks this key."""
        return self.convert(None)[0]

    def load(self, value: Any) -> tuple[Any, bool]:
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
    record: Mapping[str, Any], fields: Iterable[Field], known: frozenset[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Model attributes from a record, and the ``_legacy`` entry for what they lose."""
    attrs: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    absent: list[str] = []
    for field in fields:
        if field.name not in record:
            attrs[field.attr] = field.default
            absent.append(field.name)
            continue
        attrs[field.attr], exact = field.load(record[field.name])
        if not exact:
            raw[field.name] = record[field.name]
    raw.update((k, v) for k, v in record.items() if k not in known)
    entry: dict[str, Any] = {"raw": raw, "absent": absent}
    return attrs, {k: v for k, v in entry.items() if v}


def _native(record: Mapping[str, Any], with_kind: bool) -> dict[str, Any] | None:
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
    file: str, key: str, native: dict[str, Any] | None, legacy: dict[str, Any]
) -> dict[str, Any]:
    props = dict(native.get("props", {})) if native else {}
    if legacy:
        props[LEGACY_KEY] = legacy
    if _has_nul(props):
        _fail(file, key, "a value kept in props holds a NUL character, which props cannot")
    return props


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return isinstance(value, list) and any(map(_has_nul, value))


def _parse(
    file: str, key: str, record: Any, fields: Iterable[Field], known: frozenset[str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """A record's model attributes, its ``_legacy`` entry and its ``_loomdb`` part."""
    if not isinstance(record, dict):
        _fail(file, key, "an entry must be a JSON object")
    native = _native(record, with_kind=file == CONCEPTS)
    try:
        attrs, legacy = _split(record, fields, known if native else known - {NATIVE_KEY})
    except _Malformed as exc:
        _fail(file, key, str(exc))
    return attrs, legacy, native


def _concept_node(key: str, record: Any) -> Node:
    attrs, legacy, native = _parse(CONCEPTS, key, record, CONCEPT_FIELDS, CONCEPT_KEYS)
    if record.get("id") != key:
        if "id" in record:
            legacy.setdefault("raw", {})["id"] = record["id"]
        else:
            legacy.setdefault("absent", []).append("id")
    kind = native.get("kind", "concept") if native else "concept"
    return Node(id=key, kind=kind, props=_props(CONCEPTS, key, native, legacy), **attrs)


def _association_edge(key: str, record: Any) -> Edge:
    attrs, legacy, native = _parse(ASSOCIATIONS, key, record, ASSOCIATION_FIELDS,
                                   ASSOCIATION_KEYS)
    src, dst = record.get("source_id"), record.get("target_id")
    if not (_valid_id(src) and _valid_id(dst)):
        _fail(ASSOCIATIONS, key, "source_id and target_id must be concept ids")
    if key != f"{src}:{dst}":
        legacy["key"] = key
    return Edge(src=src, dst=dst, props=_props(ASSOCIATIONS, key, native, legacy), **attrs)


def _valid_id(value: Any) -> TypeGuard[str]:
    return type(value) is str and 0 < len(value) <= MAX_ID_LENGTH and "\x00" not in value


# -- nodes and edges -> records -------------------------------------------------------------


def _restore(field: Field, current: Any, legacy: Mapping[str, Any]) -> Any:
    """The legacy value to write for ``field``: the original while loomdb's value is still
    the one derived from it, else loomdb's; ``_ABSENT`` to leave the key out."""
    raw = legacy.get("raw", {})
    if field.name in legacy.get("absent", ()):
        if field.stamped or current == field.default:
            return _ABSENT
    elif field.name in raw:
        derived = field.convert(raw[field.name])[0]
        if current == derived or (derived is None and field.stamped):
            return raw[field.name]
    return current


_ABSENT = object()


def _legacy_of(props: Mapping[str, Any]) -> dict[str, Any]:
    entry = props.get(LEGACY_KEY)
    return entry if isinstance(entry, dict) else {}


def _record(
    head: dict[str, Any], fields: Iterable[Field], item: Node | Edge, kind: str | None
) -> dict[str, Any]:
    legacy = _legacy_of(item.props)
    record = dict(head)
    for field in fields:
        value = _restore(field, getattr(item, field.attr), legacy)
        if value is not _ABSENT:
            record[field.name] = value
    raw = legacy.get("raw", {})
    record.update((k, v) for k, v in raw.items() if k not in record and k not in head)
    native: dict[str, Any] = {} if kind in (None, "concept") else {"kind": kind}
    props = {k: v for k, v in item.props.items() if k != LEGACY_KEY}
    if props:
        native["props"] = props
    if native:
        record[NATIVE_KEY] = native
    return record


def _concept_record(node: Node) -> dict[str, Any]:
    legacy = _legacy_of(node.props)
    record = _record({"id": node.id}, CONCEPT_FIELDS, node, node.kind)
    if "id" in legacy.get("absent", ()):
        del record["id"]
    elif "id" in legacy.get("raw", {}):
        record["id"] = legacy["raw"]["id"]
    return record


def _association_item(edge: Edge) -> tuple[str, dict[str, Any]]:
    """An edge's key in associations.json and its record."""
    key = _legacy_of(edge.props).get("key", f"{edge.src}:{edge.dst}")
    head = {"source_id": edge.src, "target_id": edge.dst}
    return str(key), _record(head, ASSOCIATION_FIELDS, edge, None)


# -- reading --------------------------------------------------------------------------------


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number JSON allows")


def _load(path: Path) -> Any:
    """A file's JSON (None if it does not exist), with NaN and Infinity refused."""
    if not path.exists():
        return None
    try:
        with path.open(encoding="utf-8") as file:
            return json.load(file, parse_constant=_reject_constant)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN, huge integers
        raise InvalidInput(f"{path.name} is not valid JSON: {exc}") from exc


def _object(document: Any, file: str) -> dict[str, Any]:
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise InvalidInput(f"{file} must hold a JSON object, got {type(document).__name__}")
    return document


@dataclass
class _Embeddings:
    """embeddings.json, checked: ids, a float64 matrix, and where it held integers."""

    header: dict[str, Any] | None  # None: there was no embeddings.json
    ids: list[str]
    matrix: npt.NDArray[np.float64]
    ints: dict[str, list[int]]


def _read_embeddings(document: Any, dim: int | None) -> _Embeddings:
    top = _object(document, EMBEDDINGS)
    vectors = top.get("embeddings", {})
    if not isinstance(vectors, dict):
        raise InvalidInput(f"{EMBEDDINGS}: 'embeddings' must be an object of id -> list")
    header = None if document is None else {
        k: (None if k == "embeddings" else v) for k, v in top.items()
    }
    if _has_nul(header):
        raise InvalidInput(f"{EMBEDDINGS}: a top-level value holds a NUL character, which "
                           "loomdb cannot keep")
    ids, rows = list(vectors), list(vectors.values())
    for key, row in zip(ids, rows, strict=True):
        if type(row) is not list or not row:
            _fail(EMBEDDINGS, key, "an embedding must be a non-empty list of numbers")
        dim = dim or len(row)  # the space's dimension, else the first embedding's
        if len(row) != dim:
            raise DimensionMismatch(f"{EMBEDDINGS} entry {key!r:.100}: {len(row)} values, "
                                    f"expected {dim}")
    types = set(map(type, itertools.chain.from_iterable(rows)))
    ints = _integer_positions(ids, rows) if types - {float} else {}
    matrix = np.asarray(rows, dtype=np.float64).reshape(len(rows), dim or 0)
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if len(bad):
        _fail(EMBEDDINGS, ids[bad[0]], "values must be finite numbers")
    return _Embeddings(header, ids, matrix, ints)


def _integer_positions(ids: list[str], rows: list[list[Any]]) -> dict[str, list[int]]:
    """Where rows hold JSON integers (kept to write them back as integers); anything but
    numbers, and integers a float64 cannot hold exactly, are malformed."""
    found = {}
    for key, row in zip(ids, rows, strict=True):
        positions = [i for i, x in enumerate(row) if type(x) is not float]
        for i in positions:
            if type(row[i]) is not int or abs(row[i]) > EXACT_INT:
                _fail(EMBEDDINGS, key, f"value {row[i]!r:.40} is not a number loomdb keeps")
        if positions:
            found[key] = positions
    return found


# -- import ---------------------------------------------------------------------------------


@dataclass
class _Legacy:
    """A legacy directory, read and checked, ready to write."""

    nodes: list[Node]
    edges: list[Edge]
    embeddings: _Embeddings


def _read_directory(db: Database, directory: Path, space: VectorSpace | None) -> _Legacy:
    if not (directory / CONCEPTS).is_file():
        raise InvalidInput(f"{directory} holds no {CONCEPTS}: not a legacy directory")
    concepts = _object(_load(directory / CONCEPTS), CONCEPTS)
    nodes = [_concept_node(_checked_id(CONCEPTS, key), r) for key, r in concepts.items()]
    associations = _object(_load(directory / ASSOCIATIONS), ASSOCIATIONS)
    edges = [_association_edge(key, record) for key, record in associations.items()]
    embeddings = _read_embeddings(_load(directory / EMBEDDINGS), space.dim if space else None)
    _check_references(db, concepts, associations, embeddings)
    ints = embeddings.ints  # kept on the node, to write those values back as integers
    nodes = [replace(n, props={**n.props, LEGACY_KEY: {**_legacy_of(n.props),
                                                       "vector_ints": ints[n.id]}})
             if n.id in ints else n for n in nodes]
    return _Legacy(nodes, edges, embeddings)


def _checked_id(file: str, key: str) -> str:
    if not _valid_id(key):
        _fail(file, key, f"ids are 1-{MAX_ID_LENGTH} characters without NUL")
    if key == HEADER_ID:
        _fail(file, key, "this id is reserved by loomdb")
    return key


def _check_references(
    db: Database, concepts: dict[str, Any], associations: dict[str, Any], emb: _Embeddings
) -> None:
    """Every association end and embedding must name a concept of the file or the store."""
    wanted = [(ASSOCIATIONS, k, r.get(end)) for k, r in associations.items()
              for end in ("source_id", "target_id")]
    wanted += [(EMBEDDINGS, key, key) for key in emb.ids]
    unknown = sorted({ref for _, _, ref in wanted if ref not in concepts and _valid_id(ref)})
    stored: set[str] = set()
    for start in range(0, len(unknown), BATCH):
        stored.update(db.get_nodes(unknown[start : start + BATCH]))
    stored.discard(HEADER_ID)
    seen: set[tuple[str, str, str]] = set()
    for file, key, ref in wanted:
        if ref not in concepts and ref not in stored:
            _fail(file, key, f"names {ref!r:.100}, which is not a concept")
    for key, record in associations.items():
        identity = (record["source_id"], record["target_id"], _assoc_type(record["assoc_type"])[0])
        if identity in seen:
            _fail(ASSOCIATIONS, key, "repeats another association's source, target and type")
        seen.add(identity)


def _find_space(db: Database, name: str) -> VectorSpace | None:
    return next((s for s in db.spaces() if s.name == name), None)


def _write_vectors(db: Database, emb: _Embeddings, name: str, space: VectorSpace | None) -> int:
    """Create the space if needed, then store the vectors; returns how many were rounded."""
    if not emb.ids:
        return 0
    provider = (emb.header or {}).get("provider")
    provider = provider if isinstance(provider, str) else None
    if space is None:
        model = "unknown" if provider is None else provider
        space = db.create_space(name, emb.matrix.shape[1], model=model, metric="cosine",
                                storage="float64")
    elif provider is not None and provider != space.model:
        raise ModelMismatch(f"{EMBEDDINGS}: provider {provider!r} differs from the model "
                            f"{space.model!r} of vector space {name!r}")
    for start in range(0, len(emb.ids), BATCH):
        db.set_vectors(emb.ids[start : start + BATCH], emb.matrix[start : start + BATCH],
                       space=name)
    if space.storage == "float64":
        return 0
    kept = emb.matrix.astype(space.storage).astype(np.float64)
    return int((kept != emb.matrix).any(axis=1).sum())


def _write_header(db: Database, emb: _Embeddings, space: VectorSpace | None) -> None:
    """Keep embeddings.json's top level on a reserved node when the space cannot carry it."""
    model = space.model if space else None
    plain = [("provider", None), ("embeddings", None)]  # also what a space-less store exports
    if emb.header is None or (list(emb.header.items()) == plain and not emb.ids):
        return
    if list(emb.header.items()) == [("provider", model), ("embeddings", None)]:
        stale = db.get_nodes([HEADER_ID]).get(HEADER_ID)
        if stale is not None and _is_header(stale):
            db.delete_node(HEADER_ID)
        return
    entry = {"header": emb.header, "model": model}
    db.upsert_nodes([Node(HEADER_ID, kind=HEADER_KIND, props={LEGACY_KEY: entry})])


def import_legacy(db: Database, directory: str | Path, *, space: str = "text") -> dict[str, int]:
    """Import a legacy directory into ``db``, all of it or (on any error) none of it.

    Embeddings go into vector space ``space``, created as a cosine float64 space of the data's
    dimension with ``model=provider`` if absent. Returns the counts ``concepts``,
    ``associations``, ``embeddings``, plus ``rounded_embeddings`` when an existing space keeps
    fewer bits than float64 and some values were rounded.

    Raises ``InvalidInput`` (naming the file and the entry) for malformed files, and
    ``Conflict``, ``DimensionMismatch`` or ``ModelMismatch`` when the store disagrees.
    """
    existing = _find_space(db, space)
    legacy = _read_directory(db, Path(directory), existing)
    nodes = legacy.nodes
    try:
        with db.transaction():
            for start in range(0, len(nodes), BATCH):
                db.add_nodes(nodes[start : start + BATCH])
            for start in range(0, len(legacy.edges), BATCH):
                db.add_edges(legacy.edges[start : start + BATCH])
            rounded = _write_vectors(db, legacy.embeddings, space, existing)
            _write_header(db, legacy.embeddings, _find_space(db, space))
    except UnicodeEncodeError as exc:  # what the driver raises for lone surrogates
        file, key = _unencodable(legacy)
        _fail(file, key, f"holds a string that is not valid Unicode "
                         f"({exc.object[exc.start : exc.end]!r:.20})")
    counts = {"concepts": len(nodes), "associations": len(legacy.edges),
              "embeddings": len(legacy.embeddings.ids)}
    if rounded:
        counts["rounded_embeddings"] = rounded
    return counts


def _unencodable(legacy: _Legacy) -> tuple[str, str]:
    """The file and entry holding a string UTF-8 cannot encode (a lone surrogate)."""
    items: list[tuple[str, str, Node | Edge]] = [(CONCEPTS, n.id, n) for n in legacy.nodes]
    items += [(ASSOCIATIONS, str(_legacy_of(e.props).get("key", f"{e.src}:{e.dst}")), e)
              for e in legacy.edges]
    for file, key, item in items:
        try:
            json.dumps(item.__dict__, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            return file, key
    return EMBEDDINGS, "provider"


# -- writing --------------------------------------------------------------------------------


def _render(value: Any, depth: int) -> str:
    """``value`` as json.dump(indent=2) writes it ``depth`` levels deep."""
    return json.dumps(value, indent=2, allow_nan=False).replace("\n", "\n" + "  " * depth)


def _render_numbers(values: list[float], depth: int) -> str:
    """A vector as json.dump(indent=2) would write it (repr is json's float format), fast."""
    inner = "\n" + "  " * (depth + 1)
    return "[" + inner + ("," + inner).join(map(repr, values)) + "\n" + "  " * depth + "]"


Write = Callable[[str], object]
Rendered = str | Callable[[Write], None]  # a value's JSON text, or a writer that streams it


def _write_object(write: Write, pairs: Iterable[tuple[str, Rendered]], depth: int = 0) -> None:
    """Stream ``{key: value, ...}`` in json.dump(indent=2) layout."""
    inner = "\n" + "  " * (depth + 1)
    first = True
    for key, value in pairs:
        write(("{" if first else ",") + inner + json.dumps(key) + ": ")
        if isinstance(value, str):
            write(value)
        else:
            value(write)
        first = False
    write("{}" if first else "\n" + "  " * depth + "}")


def _write_file(path: Path, fill: Callable[[Write], None]) -> None:
    def write(temp: Path) -> None:
        with temp.open("w", encoding="utf-8", buffering=1 << 20) as file:
            fill(file.write)

    atomic_write(path, write)


# -- export ---------------------------------------------------------------------------------


def _is_header(node: Node) -> bool:
    return node.id == HEADER_ID and node.kind == HEADER_KIND


def _all_nodes(db: Database) -> Iterator[Node]:
    for offset in itertools.count(0, MAX_LIMIT):
        page = db.list_nodes(limit=MAX_LIMIT, offset=offset)
        yield from page
        if len(page) < MAX_LIMIT:
            return


def _concept_pairs(db: Database, exported: dict[str, None]) -> Iterator[tuple[str, str]]:
    for node in _all_nodes(db):
        if not _is_header(node):
            exported[node.id] = None
            yield node.id, _render(_concept_record(node), 1)


def _association_pairs(
    db: Database, exported: dict[str, None], counts: dict[str, int]
) -> list[tuple[str, str]]:
    """Associations between exported concepts; of several edges with one key, the heaviest."""
    chosen: dict[str, tuple[float, dict[str, Any]]] = {}
    for edge in db.backend.get_edges(db.tenant_name, limit=ALL_EDGES):
        if edge.src in exported and edge.dst in exported:
            key, record = _association_item(edge)
            if key in chosen:
                counts["skipped_edges"] += 1
                if edge.weight <= chosen[key][0]:
                    continue
            chosen[key] = (edge.weight, record)
    counts["associations"] = len(chosen)
    return [(key, _render(record, 1)) for key, (_, record) in chosen.items()]


def _vector_values(vector: npt.NDArray[Any], node: Node) -> list[float]:
    values: list[float] = vector.astype(np.float64).tolist()
    for i in _legacy_of(node.props).get("vector_ints", ()):
        if i < len(values) and values[i].is_integer():
            values[i] = int(values[i])
    return values


def _embedding_pairs(
    db: Database, space: VectorSpace, exported: dict[str, None], counts: dict[str, int]
) -> Iterator[tuple[str, str]]:
    """Vectors of exported nodes in the order they were stored, as their exact values."""
    tenant, name = db.tenant_name, space.name
    labels = db.backend.vector_labels(tenant, name, None).tolist()
    for start in range(0, len(labels), BATCH):
        batch = labels[start : start + BATCH]
        owners = db.backend.nodes_by_label(tenant, name, batch)
        nodes = [owners[x] for x in batch if x in owners and owners[x].id in exported]
        vectors = db.backend.get_vectors(tenant, name, [n.id for n in nodes])
        counts["embeddings"] += len(nodes)
        for node in nodes:
            yield node.id, _render_numbers(_vector_values(vectors[node.id], node), 2)


def _embeddings_header(db: Database, space: VectorSpace | None) -> dict[str, Any]:
    """The top level of embeddings.json: as imported, while the space's model is unchanged."""
    model = space.model if space else None
    found = db.get_nodes([HEADER_ID]).get(HEADER_ID)
    entry = _legacy_of(found.props) if found is not None and _is_header(found) else {}
    header = entry.get("header")
    if not isinstance(header, dict) or entry.get("model") != model:
        return {"provider": model, "embeddings": None}
    return header if "embeddings" in header or space is None else {**header, "embeddings": None}


def _embeddings_document(
    db: Database, name: str, exported: dict[str, None], counts: dict[str, int]
) -> Iterator[tuple[str, Rendered]]:
    space = _find_space(db, name)
    for key, value in _embeddings_header(db, space).items():
        if key != "embeddings":
            yield key, _render(value, 1)
        elif space is None:
            yield key, "{}"
        else:
            pairs = _embedding_pairs(db, space, exported, counts)
            yield key, partial(_write_object, pairs=pairs, depth=1)


def export_legacy(db: Database, directory: str | Path, *, space: str = "text") -> dict[str, int]:
    """Write ``db``'s nodes, edges and the vectors of ``space`` as a legacy directory.

    Every node becomes a concept (its text as ``content``); edges and vectors follow the
    exported nodes. The legacy key ``"src:dst"`` holds one association per pair: of edges
    sharing a key the heaviest is written, the others are counted in ``skipped_edges``. Each
    file is replaced atomically. Returns the counts ``concepts``, ``associations``,
    ``embeddings`` and ``skipped_edges``; raises ``LoomError`` if the files cannot be written.
    """
    target = Path(directory)
    exported: dict[str, None] = {}
    counts = {"concepts": 0, "associations": 0, "embeddings": 0, "skipped_edges": 0}
    try:
        target.mkdir(parents=True, exist_ok=True)
        _write_file(target / CONCEPTS, lambda w: _write_object(w, _concept_pairs(db, exported)))
        counts["concepts"] = len(exported)
        associations = _association_pairs(db, exported, counts)
        _write_file(target / ASSOCIATIONS, lambda w: _write_object(w, associations))
        document = _embeddings_document(db, space, exported, counts)
        _write_file(target / EMBEDDINGS, lambda w: _write_object(w, document))
    except OSError as exc:
        raise LoomError(f"cannot write the legacy files to {target}: {exc}") from exc
    return counts
