"""Metadata filters over node columns and ``props``: the AST, its parsing and validation,
and its evaluation in Python (storage turns the AST into SQL: ``storage/sql_filters.py``).

A filter is a JSON object (Mongo/Chroma-like)::

    filter    := {entry, ...}                      entries are AND-ed; {} matches everything
    entry     := field: value                      shorthand for {"$eq": value}
               | field: {op: arg, ...}             several operators are AND-ed
               | "$and": [filter, ...]             [] matches everything
               | "$or": [filter, ...]              [] matches nothing
               | "$not": filter
    op        := $eq $ne $lt $lte $gt $gte  (scalar)  |  $in $nin  ([scalar, ...])
               | $exists (true/false)  |  $contains (scalar)
    field     := id | kind | text | source | category | confidence | strength
               | access_count | created | updated | last_accessed
               | props.<key>[.<key>...]            each key matches [\\w\\- ]{1,64}, no "--"
    scalar    := string | finite number | true | false | null

Examples::

    {"kind": "chunk", "confidence": {"$gte": 0.5}}
    {"$or": [{"props.lang": {"$in": ["en", "fr"]}}, {"props.tags": {"$contains": "faq"}}]}
    {"$not": {"props.draft": true}, "props.meta.pages": {"$exists": true}}

Semantics (identical in every backend's SQL and in :func:`matches`):

- A missing props key and a JSON/SQL ``null`` are the same thing: ``{"$eq": null}`` matches
  both, ``{"$exists": true}`` means "present and not null".
- Values only equal or order against values of their own type: numbers (int and float mix),
  strings (code point order, i.e. binary UTF-8) and, in props, booleans (``true`` is not ``1``).
  Columns have no boolean type, so a boolean compares to a column as 1/0.
- ``$ne`` and ``$nin`` are exact negations of ``$eq`` and ``$in``: a missing key is "not equal".
  ``$lt``/``$gt``... never match a missing key or a value of another type.
- ``$contains``: substring of a string (``%``/``_`` are literal), or element of a props array.

The SQL translation binds every value as a parameter, never as SQL text. Limits: nesting depth 32,
1,000 conditions, 10,000 values per ``$in``/``$nin`` list and 20,000 in all.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from loomdb.errors import InvalidFilter

__all__ = [
    "COLUMN_NAMES",
    "And",
    "Compare",
    "Contains",
    "Field",
    "FilterNode",
    "In",
    "Not",
    "Or",
    "Scalar",
    "Where",
    "all_of",
    "matches",
    "parse_filter",
    "parse_where",
    "referenced_fields",
]

Scalar = str | float | bool | None

COLUMN_NAMES: Final = (
    *("id", "kind", "text", "source", "category", "confidence", "strength", "access_count"),
    *("created", "updated", "last_accessed"),
)

MAX_DEPTH: Final = 32
MAX_CONDITIONS: Final = 1_000
MAX_LIST_ITEMS: Final = 10_000
MAX_TOTAL_ITEMS: Final = 20_000  # all $in/$nin lists together: stays under SQLite's 32766 `?`
MAX_PATH_KEYS: Final = 32

_KEY = re.compile(r"[\w\- ]{1,64}")
_INT64 = range(-(2**63), 2**63)
_COMPARE_OPS: Final = ("$eq", "$lt", "$lte", "$gt", "$gte")
_OPERATORS: Final = (*_COMPARE_OPS, "$ne", "$in", "$nin", "$exists", "$contains")
_PY_OPS: Final[Mapping[str, Callable[[Any, Any], bool]]] = dict(
    zip(
        _COMPARE_OPS, (operator.eq, operator.lt, operator.le, operator.gt, operator.ge), strict=True
    )
)


@dataclass(frozen=True)
class Field:
    """A column (``column`` set) or a JSON path inside ``props`` (``column`` is None)."""

    column: str | None
    path: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The field as written in a filter: ``kind`` or ``props.a.b``."""
        return self.column if self.column is not None else "props." + ".".join(self.path)


@dataclass(frozen=True)
class Compare:
    """``field <op> value`` with op one of ``$eq $lt $lte $gt $gte``."""

    field: Field
    op: str
    value: Scalar


@dataclass(frozen=True)
class In:
    """``field`` equals one of ``values`` (``$eq`` semantics for each)."""

    field: Field
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Contains:
    """``value`` is a substring of the string ``field`` or an element of the props array."""

    field: Field
    value: str | float | bool


@dataclass(frozen=True)
class And:
    """All children hold (true when empty)."""

    children: tuple[FilterNode, ...]


@dataclass(frozen=True)
class Or:
    """Some child holds (false when empty)."""

    children: tuple[FilterNode, ...]


@dataclass(frozen=True)
class Not:
    """The child does not hold."""

    child: FilterNode


FilterNode = Compare | In | Contains | And | Or | Not
FILTER_TYPES = (Compare, In, Contains, And, Or, Not)
Where = Mapping[str, Any] | FilterNode | None  # a filter document, or one parsed before


# --------------------------------------------------------------------------- parsing


def parse_filter(expr: object, fields: Collection[str] = COLUMN_NAMES) -> FilterNode | None:
    """Parse a filter document into an AST; ``None`` means "match everything".

    ``fields`` is the column allowlist (``props.<key>`` paths are always allowed).
    Raises ``InvalidFilter`` on anything malformed, unknown, hostile or too large.
    """
    if expr is None:
        return None
    node = _Parser(fields).document(expr, depth=1)
    return None if node == And(()) else node


def parse_where(where: Where, kind: str | None = None) -> FilterNode | None:
    """The filter of an API call's ``where=`` and ``kind=``: ``kind`` is the shorthand for
    ``{"kind": kind}`` AND-ed with ``where`` (the one place that rule is written). A filter
    parsed before is passed on as it is, never parsed again."""
    if isinstance(where, FILTER_TYPES):
        return all_of(where, None if kind is None else parse_filter({"kind": kind}))
    if kind is not None:
        where = {"$and": [dict(where), {"kind": kind}]} if where else {"kind": kind}
    return parse_filter(where)


def all_of(*filters: FilterNode | None) -> FilterNode | None:
    """The conjunction of ``filters`` (``None`` ones match everything and are left out)."""
    present = tuple(f for f in filters if f is not None)
    if not present:
        return None
    return present[0] if len(present) == 1 else And(present)


def _show(text: str) -> str:
    """``repr`` of user text, cut short so hostile input cannot flood an error message."""
    shown = repr(text)
    return shown if len(shown) <= 80 else shown[:77] + "..."


class _Parser:
    """Walks a filter document once, enforcing the size limits as it goes."""

    def __init__(self, fields: Collection[str]) -> None:
        self.fields = fields
        self.conditions = 0
        self.items = 0

    def count(self) -> None:
        """Charge one condition against the size limit."""
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise InvalidFilter(f"filter has more than {MAX_CONDITIONS} conditions")

    def document(self, expr: object, depth: int) -> FilterNode:
        if not isinstance(expr, Mapping):
            raise InvalidFilter(f"a filter must be a JSON object, got {type(expr).__name__}")
        if depth > MAX_DEPTH:
            raise InvalidFilter(f"filter is nested deeper than {MAX_DEPTH} levels")
        if not expr:
            self.count()
        parts = [self.entry(key, value, depth) for key, value in expr.items()]
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def entry(self, key: object, value: object, depth: int) -> FilterNode:
        if not isinstance(key, str):
            raise InvalidFilter(f"filter keys must be strings, got {type(key).__name__}")
        if key in ("$and", "$or"):
            self.count()
            if not isinstance(value, list | tuple):
                raise InvalidFilter(f"{key} needs a list of filters")
            children = tuple(self.document(child, depth + 1) for child in value)
            return And(children) if key == "$and" else Or(children)
        if key == "$not":
            self.count()
            return Not(self.document(value, depth + 1))
        if key.startswith("$"):
            raise InvalidFilter(f"unknown top-level operator {_show(key)}; use $and, $or, $not")
        field = self.field(key)
        if isinstance(value, Mapping):
            return self.operators(field, value)
        self.count()
        return self.compare(field, "$eq", value)

    def field(self, name: str) -> Field:
        if name in self.fields:
            return Field(name)
        if not name.startswith("props."):
            allowed = ", ".join(sorted(self.fields))
            raise InvalidFilter(f"unknown field {_show(name)}; allowed: {allowed}, props.<key>")
        keys = tuple(name[len("props.") :].split("."))
        if len(keys) > MAX_PATH_KEYS:
            raise InvalidFilter(f"props path {_show(name)} is deeper than {MAX_PATH_KEYS} keys")
        for key in keys:
            if not _KEY.fullmatch(key) or "--" in key:
                raise InvalidFilter(
                    f"invalid props key {_show(key)} in field {_show(name)}: a key is 1-64 "
                    "letters, digits, '_', '-' or spaces (no '--')"
                )
        return Field(None, keys)

    def operators(self, field: Field, spec: Mapping[object, object]) -> FilterNode:
        if not spec:
            raise InvalidFilter(f"field {_show(field.name)} has an empty operator object")
        parts = [self.operator(field, op, arg) for op, arg in spec.items()]
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def operator(self, field: Field, op: object, arg: object) -> FilterNode:
        self.count()
        if op in _COMPARE_OPS:
            return self.compare(field, str(op), arg)
        if op == "$ne":
            return Not(self.compare(field, "$eq", arg))
        if op in ("$in", "$nin"):
            node = self.membership(field, str(op), arg)
            return node if op == "$in" else Not(node)
        if op == "$exists":
            if not isinstance(arg, bool):
                raise InvalidFilter(f"$exists on {_show(field.name)} needs true or false")
            absent = Compare(field, "$eq", None)  # null and missing are one thing
            return Not(absent) if arg else absent
        if op == "$contains":
            return self.contains(field, arg)
        shown = _show(op) if isinstance(op, str) else type(op).__name__
        raise InvalidFilter(
            f"unknown operator {shown} on {_show(field.name)}; allowed: {', '.join(_OPERATORS)}"
        )

    def compare(self, field: Field, op: str, arg: object) -> Compare:
        if op != "$eq" and (arg is None or isinstance(arg, bool)):
            raise InvalidFilter(f"{op} on {_show(field.name)} needs a number or a string")
        return Compare(field, op, _scalar(arg, field, op))

    def membership(self, field: Field, op: str, arg: object) -> In:
        where = f"{op} on {_show(field.name)}"
        if not isinstance(arg, list | tuple):
            raise InvalidFilter(f"{where} needs a list of values")
        if len(arg) > MAX_LIST_ITEMS:
            raise InvalidFilter(f"{where} has more than {MAX_LIST_ITEMS} values")
        self.items += len(arg)  # each becomes a SQL parameter
        if self.items > MAX_TOTAL_ITEMS:
            raise InvalidFilter(f"filter lists more than {MAX_TOTAL_ITEMS} values in all")
        return In(field, tuple(_scalar(value, field, op) for value in arg))

    def contains(self, field: Field, arg: object) -> Contains:
        value = _scalar(arg, field, "$contains")
        if value is None:
            raise InvalidFilter(f"$contains on {_show(field.name)} needs a non-null value")
        if field.column is not None and not isinstance(value, str):
            raise InvalidFilter(f"$contains on column {_show(field.name)} needs a string")
        return Contains(field, value)


def _scalar(value: object, field: Field, op: str) -> Scalar:
    """Validate one filter value; normalise subclasses (IntEnum, numpy floats...).

    Columns have no boolean type (SQLite stores 1/0), so a boolean for a column becomes an int.
    """
    where = f"{op} on {_show(field.name)}"
    if isinstance(value, bool) and field.column is not None:
        return int(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if int(value) not in _INT64:
            raise InvalidFilter(f"{where}: integer {value} does not fit in 64 bits")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidFilter(f"{where}: numbers must be finite, got {value}")
        return float(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidFilter(f"{where}: string is not valid unicode ({exc.reason})") from exc
        return str(value)
    raise InvalidFilter(f"{where}: unsupported value of type {type(value).__name__}")


def referenced_fields(ast: FilterNode | None) -> set[str]:
    """Names of the fields a filter reads (``kind``, ``props.a.b``), e.g. to pick indexes."""
    if ast is None:
        return set()
    if isinstance(ast, And | Or):
        return set().union(*(referenced_fields(child) for child in ast.children))
    if isinstance(ast, Not):
        return referenced_fields(ast.child)
    return {ast.field.name}


# --------------------------------------------------------------------------- Python


_MISSING: Final = None  # a missing key reads as null: the two are one thing in filters
_OPAQUE: Final = object()  # a column value SQLite could not hold (list, dict): equals nothing


def matches(ast: FilterNode | None, node: Mapping[str, object]) -> bool:
    """Evaluate a filter against a row dict (columns by name, ``"props"`` as a dict).

    Gives the same answer as the SQL of ``loomdb.storage.sql_filters.to_sql`` run on the
    stored row.
    """
    if ast is None:
        return True
    if isinstance(ast, And):
        return all(matches(child, node) for child in ast.children)
    if isinstance(ast, Or):
        return any(matches(child, node) for child in ast.children)
    if isinstance(ast, Not):
        return not matches(ast.child, node)
    actual = _read(ast.field, node)
    if isinstance(ast, In):
        return any(_equal(actual, value) for value in ast.values)
    if isinstance(ast, Contains):
        return _contains(actual, ast.value)
    if ast.value is None or ast.op == "$eq":
        return _equal(actual, ast.value)
    return _kind(actual) == _kind(ast.value) and _PY_OPS[ast.op](actual, ast.value)


def _read(field: Field, node: Mapping[str, object]) -> object:
    """The field's value as SQLite sees it: column bools are ints, huge JSON ints are floats."""
    if field.column is not None:
        value = node.get(field.column, _MISSING)
        if isinstance(value, bool):
            return int(value)
        return _OPAQUE if isinstance(value, list | dict) else value
    current = node.get("props", _MISSING)
    for key in field.path:
        if not isinstance(current, dict) or key not in current:
            return _MISSING
        current = current[key]
    return _json_value(current)


def _json_value(value: object) -> object:
    """SQLite reads JSON integers outside 64 bits as REAL; mirror that."""
    if isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
        return float(value)
    return value


def _kind(value: object) -> str:
    """The type class values compare within: null, bool, number, text, array or other."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return "array" if isinstance(value, list) else "other"


def _equal(actual: object, target: Scalar) -> bool:
    if _kind(actual) != _kind(target):
        return False
    return target is None or actual == target


def _contains(actual: object, target: str | float | bool) -> bool:
    if isinstance(actual, str):
        return isinstance(target, str) and target in actual
    if isinstance(actual, list):
        return any(_equal(_json_value(element), target) for element in actual)
    return False
