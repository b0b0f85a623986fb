"""Checks on everything users hand the facade, so bad input fails early with a clear error."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from .errors import DimensionMismatch, InvalidInput, InvalidVector, ModelMismatch
from .model import DIRECTIONS, Direction, Node, VectorSpace

__all__ = [
    "EDGE_CHECKS",
    "MAX_PROPS_DEPTH",
    "NODE_CHECKS",
    "check_direction",
    "check_edge_fields",
    "check_id",
    "check_limit",
    "check_name",
    "check_node_fields",
    "check_number",
    "check_offset",
    "check_props",
    "check_unicode",
    "check_vectors",
    "shown",
    "unique",
]

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")
MAX_ID_LENGTH = 512
MAX_LIMIT = 100_000
MAX_MAGNITUDE = 1e15  # squared and summed over 16k dims this stays finite in float32
INT64_MAX = 2**63 - 1  # SQLite INTEGER and PostgreSQL bigint are 64-bit signed
MAX_PROPS_DEPTH = 64  # far below the JSON parsers' own limits (SQLite's 1000, Python's stack)
CONTAINERS = (dict, list, tuple)  # what props nest in


def shown(value: object, width: int = 40) -> str:
    """``value`` for an error message, in bounded time and length: the repr of a scalar cut
    to ``width``, else its type (the repr of hostile input can recurse or run for ever)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    if value is None or isinstance(value, str | int | float):
        text = repr(value)
        return text if len(text) <= width else text[: width - 3] + "..."
    return f"a {type(value).__name__}"


def check_name(value: object, what: str) -> str:
    """Tenant and space names: 1-64 of ``A-Z a-z 0-9 _ . -``, not starting with a dot."""
    if not isinstance(value, str) or not NAME.match(value):
        raise InvalidInput(
            f"{what} name {shown(value, 80)} is invalid: use 1-64 letters, digits, '_', '.', '-' "
            "(not starting with '.' or '-')"
        )
    return value


def check_id(value: object) -> str:
    """A node id, or the id of a ``Node`` the API returned, checked."""
    if isinstance(value, Node):
        value = value.id
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH or "\x00" in value:
        raise InvalidInput(
            f"node id {shown(value, 80)} is invalid: ids are non-empty strings of at most "
            f"{MAX_ID_LENGTH} characters without NUL"
        )
    return value


def check_limit(value: object, what: str = "limit", maximum: int = MAX_LIMIT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= maximum:
        raise InvalidInput(f"{what} must be an integer from 1 to {maximum}, got {shown(value)}")
    return value


def check_unicode(owner: object, names: Sequence[str], values: Sequence[object]) -> None:
    """Refuse strings UTF-8 cannot encode (lone surrogates), naming the owner and field.

    Cheap for the common case: ASCII strings are skipped without encoding anything.
    """
    for name, value in zip(names, values, strict=True):
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                shown = str(owner).encode(errors="replace").decode()
                raise InvalidInput(f"{shown}: {name} is not valid Unicode (it holds a lone "
                                   "surrogate)") from None


def check_offset(value: object) -> int:
    """A paging offset the backends can bind: 0 to 2**63 - 1."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
        raise InvalidInput(f"offset must be an integer from 0 to 2**63 - 1, got {shown(value)}")
    return value


def check_direction(value: object) -> Direction:
    if value not in DIRECTIONS:
        raise InvalidInput(f"direction must be one of {DIRECTIONS}, got {shown(value)}")
    return cast(Direction, value)  # one of DIRECTIONS, checked just above


def check_vectors(
    space: VectorSpace, vectors: object, model: str | None = None, count: int | None = None
) -> npt.NDArray[Any]:  # float64 for a float64 space, float32 otherwise
    """``vectors`` as a matrix of the space's dimension, every value finite: float64 for a
    space that stores float64 (so nothing is rounded), float32 otherwise."""
    if model is not None and model != space.model:
        raise ModelMismatch(
            f"vectors from model {model!r} cannot go in space {space.name!r} "
            f"(model {space.model!r})"
        )
    try:
        dtype = np.float64 if space.storage == "float64" else np.float32
        matrix = np.asarray(vectors, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InvalidVector(f"vectors must be numbers: {exc}") from exc
    given = matrix.shape
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2 or matrix.shape[1] != space.dim:
        raise DimensionMismatch(
            f"space {space.name!r} holds {space.dim}-d vectors, got shape {tuple(given)}")
    if count is not None and len(matrix) != count:
        raise InvalidInput(f"got {len(matrix)} vectors for {count} ids")
    if not np.isfinite(matrix).all():
        raise InvalidVector("vectors must not contain NaN or infinity")
    if matrix.size and float(np.abs(matrix).max()) > MAX_MAGNITUDE:
        raise InvalidVector(f"vector values must lie within ±{MAX_MAGNITUDE:g} (the index "
                            "computes in float32, where larger ones overflow)")
    return matrix


# -- node and edge fields: one check for add and update ------------------------------------

Check = Callable[[str, str, object], object]  # (owner, field, value) -> the value to store


def check_props(owner: str, name: str, value: object) -> object:
    """A JSON object nested at most ``MAX_PROPS_DEPTH`` deep, measured without recursion
    (the values themselves are checked when encoded: ``storage/props.py``)."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{owner}: {name} must be a JSON object (dict)")
    for item in value.values():
        if isinstance(item, CONTAINERS):
            break
    else:
        return value  # flat, as most props are: no walk
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > MAX_PROPS_DEPTH:
            raise InvalidInput(f"{owner}: {name} are nested deeper than {MAX_PROPS_DEPTH} levels")
        items = container.values() if isinstance(container, dict) else container
        stack.extend((item, depth + 1) for item in items  # type: ignore[attr-defined]
                     if isinstance(item, CONTAINERS))
    return value


def _label(owner: str, name: str, value: object) -> str:
    """A non-empty string (node kind, edge type)."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{owner}: {name} must be a non-empty string")
    return value


def _optional_text(owner: str, name: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{owner}: {name} must be a string or None, got "
                           f"{type(value).__name__}")
    return value


def check_number(owner: str, name: str, value: object) -> float:
    """A finite real number (booleans are not numbers here), as the float the backends keep."""
    if isinstance(value, float) and math.isfinite(value):
        return value  # the common case, unchanged
    if isinstance(value, Real) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
    raise InvalidInput(f"{owner}: {name} must be a finite number, got {shown(value)}")


def _optional_number(owner: str, name: str, value: object) -> float | None:
    return None if value is None else check_number(owner, name, value)


def _count(owner: str, name: str, value: object) -> int:
    """An integer the backends can store (64-bit signed)."""
    if isinstance(value, Integral) and not isinstance(value, bool) \
            and -INT64_MAX - 1 <= int(value) <= INT64_MAX:
        return int(value)
    raise InvalidInput(f"{owner}: {name} must be an integer within 64 bits, got {shown(value)}")


NODE_CHECKS: Mapping[str, Check] = {
    "kind": _label, "text": _optional_text, "props": check_props,
    "source": _optional_text, "category": _optional_text,
    "confidence": _optional_number, "strength": _optional_number, "access_count": _count,
    "created": check_number, "updated": check_number, "last_accessed": _optional_number,
}
"""Each node column a caller may set, with its check: types, finiteness and 64-bit range.
Times are any finite Unix seconds (float8/REAL): the legacy importer keeps any finite time."""

EDGE_CHECKS: Mapping[str, Check] = {
    "type": _label, "weight": check_number, "confidence": _optional_number, "props": check_props,
    "created": check_number, "last_used": _optional_number,
}

STAMPED = ("created", "updated")  # None on insert means "now"; an update must give a time
OPTIONAL = frozenset({"text", "source", "category", "confidence", "strength", "last_accessed",
                      "last_used"})  # None is a value these columns hold (skipped unchecked)


def _check_fields(checks: Mapping[str, Check], owner: str, fields: Mapping[str, object],
                  inserting: bool) -> dict[str, object]:
    changed: dict[str, object] = {}
    for name, value in fields.items():
        check = checks.get(name)
        if check is None or (value is None and (name in OPTIONAL
                                                or (inserting and name in STAMPED))):
            continue
        checked = check(owner, name, value)
        if checked is not value:
            changed[name] = checked
    return changed


def check_node_fields(owner: str, fields: Mapping[str, object], *,
                      inserting: bool) -> dict[str, object]:
    """Check the node column fields among ``fields`` (the one path for add and update):
    types, finite numbers, 64-bit integers, props depth. Returns the fields whose value is
    stored in another form (an int confidence as a float...); ``InvalidInput`` naming
    ``owner`` and the field otherwise."""
    return _check_fields(NODE_CHECKS, owner, fields, inserting)


def check_edge_fields(owner: str, fields: Mapping[str, object]) -> dict[str, object]:
    """``check_node_fields`` for a new edge's fields (type, weight, confidence, props,
    times)."""
    return _check_fields(EDGE_CHECKS, owner, fields, inserting=True)


def unique(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))
