"""Reading a legacy directory: the three files parsed and checked whole before anything is
written, so a bad directory changes nothing. Errors name the file and the entry.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from ...database import Database
from ...errors import DimensionMismatch, InvalidInput
from ...model import Edge, JSONObject, JSONValue, Node, VectorSpace
from ...validation import MAX_ID_LENGTH
from .records import (
    ASSOCIATIONS,
    CONCEPTS,
    EMBEDDINGS,
    HEADER_ID,
    Embeddings,
    association_edge,
    concept_node,
    fail,
    has_nul,
    valid_id,
    with_vector_ints,
)
from .store import stored_ids

__all__ = ["LegacyDirectory", "read_directory"]

EXACT_INT = 2**53


@dataclass
class LegacyDirectory:
    """A legacy directory, read and checked, ready to write."""

    nodes: list[Node]
    edges: list[Edge]
    embeddings: Embeddings


def read_directory(db: Database, directory: Path, space: VectorSpace | None) -> LegacyDirectory:
    """Read and check ``directory`` against ``db`` and the vector space it will fill."""
    if not (directory / CONCEPTS).is_file():
        raise InvalidInput(f"{directory} holds no {CONCEPTS}: not a legacy directory")
    concepts = _object(_load(directory / CONCEPTS), CONCEPTS)
    nodes = [concept_node(_checked_id(CONCEPTS, key), r) for key, r in concepts.items()]
    associations = _object(_load(directory / ASSOCIATIONS), ASSOCIATIONS)
    edges = [association_edge(key, record) for key, record in associations.items()]
    embeddings = _read_embeddings(_load(directory / EMBEDDINGS), space.dim if space else None)
    _check_references(db, concepts, associations, edges, embeddings)
    _check_unique(associations, edges)
    for file, entries in ((CONCEPTS, concepts), (ASSOCIATIONS, associations),
                          (EMBEDDINGS, embeddings.header or {})):
        _check_unicode(file, entries)
    ints = embeddings.ints
    nodes = [with_vector_ints(n, ints[n.id]) if n.id in ints else n for n in nodes]
    return LegacyDirectory(nodes, edges, embeddings)


# -- files ----------------------------------------------------------------------------------


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number JSON allows")


def _load(path: Path) -> JSONValue:
    """A file's JSON (None if it does not exist), with NaN and Infinity refused."""
    if not path.exists():
        return None
    try:
        with path.open(encoding="utf-8") as file:
            document: JSONValue = json.load(file, parse_constant=_reject_constant)
            return document
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN, huge integers
        raise InvalidInput(f"{path.name} is not valid JSON: {exc}") from exc


def _object(document: JSONValue, file: str) -> JSONObject:
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise InvalidInput(f"{file} must hold a JSON object, got {type(document).__name__}")
    return document


def _checked_id(file: str, key: str) -> str:
    if not valid_id(key):
        fail(file, key, f"ids are 1-{MAX_ID_LENGTH} characters without NUL")
    if key == HEADER_ID:
        fail(file, key, "this id is reserved by loomdb")
    return key


# -- embeddings.json ------------------------------------------------------------------------


def _read_embeddings(document: JSONValue, dim: int | None) -> Embeddings:
    top = _object(document, EMBEDDINGS)
    vectors = top.get("embeddings", {})
    if not isinstance(vectors, dict):
        raise InvalidInput(f"{EMBEDDINGS}: 'embeddings' must be an object of id -> list")
    header = None if document is None else {
        k: (None if k == "embeddings" else v) for k, v in top.items()
    }
    if has_nul(header):
        raise InvalidInput(f"{EMBEDDINGS}: a top-level value holds a NUL character, which "
                           "loomdb cannot keep")
    ids, rows = list(vectors), list[list[JSONValue]]()
    for key, row in vectors.items():
        if type(row) is not list or not row:
            fail(EMBEDDINGS, key, "an embedding must be a non-empty list of numbers")
        dim = dim or len(row)  # the space's dimension, else the first embedding's
        if len(row) != dim:
            raise DimensionMismatch(f"{EMBEDDINGS} entry {key!r:.100}: {len(row)} values, "
                                    f"expected {dim}")
        rows.append(row)
    types = set(map(type, itertools.chain.from_iterable(rows)))
    ints = _integer_positions(ids, rows) if types - {float} else {}
    matrix = np.asarray(rows, dtype=np.float64).reshape(len(rows), dim or 0)
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if len(bad):
        fail(EMBEDDINGS, ids[bad[0]], "values must be finite numbers")
    return Embeddings(header, ids, matrix, ints)


def _integer_positions(ids: list[str], rows: list[list[JSONValue]]) -> dict[str, list[int]]:
    """Where rows hold JSON integers (kept to write them back as integers); anything but
    numbers, and integers a float64 cannot hold exactly, are malformed."""
    found: dict[str, list[int]] = {}
    for key, row in zip(ids, rows, strict=True):
        positions = [i for i, x in enumerate(row) if type(x) is not float]
        for i in positions:
            value = row[i]
            if type(value) is not int or abs(value) > EXACT_INT:
                fail(EMBEDDINGS, key, f"value {value!r:.40} is not a number loomdb keeps")
        if positions:
            found[key] = positions
    return found


# -- checks across entries ------------------------------------------------------------------


def _check_references(
    db: Database, concepts: JSONObject, associations: JSONObject, edges: list[Edge],
    emb: Embeddings,
) -> None:
    """Every association end and embedding must name a concept of the file or the store."""
    wanted = [(ASSOCIATIONS, key, end) for key, edge in zip(associations, edges, strict=True)
              for end in (edge.src, edge.dst)]
    wanted += [(EMBEDDINGS, key, key) for key in emb.ids]
    unknown = sorted({ref for _, _, ref in wanted if ref not in concepts and valid_id(ref)})
    stored = stored_ids(db, unknown)
    stored.discard(HEADER_ID)
    for file, key, ref in wanted:
        if ref not in concepts and ref not in stored:
            fail(file, key, f"names {ref!r:.100}, which is not a concept")


def _check_unique(associations: JSONObject, edges: list[Edge]) -> None:
    """No two associations may share source, target and type (the store keeps one)."""
    seen: set[tuple[str, str, str]] = set()
    for key, edge in zip(associations, edges, strict=True):
        identity = (edge.src, edge.dst, edge.type)
        if identity in seen:
            fail(ASSOCIATIONS, key, "repeats another association's source, target and type")
        seen.add(identity)


def _check_unicode(file: str, entries: JSONObject) -> None:
    """Refuse strings UTF-8 cannot encode (lone surrogates, which JSON escapes can spell),
    naming the first entry that holds one."""
    if _unencodable(entries) is None:
        return
    for key, value in entries.items():
        found = _unencodable({key: value})
        if found is not None:
            fail(file, key, f"holds a string that is not valid Unicode ({found!r:.20})")


def _unencodable(value: JSONValue) -> str | None:
    """The first characters of a JSON value that UTF-8 cannot encode, if any."""
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        return str(exc.object[exc.start : exc.end])
    return None
