"""Metadata filters over node columns and ``props``: parse, translate to SQLite, evaluate.

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

Semantics (identical in SQL and in :func:`matches`):

- A missing props key and a JSON/SQL ``null`` are the same thing: ``{"$eq": null}`` matches
  both, ``{"$exists": true}`` means "present and not null".
- Values only equal or order against values of their own type: numbers (int and float mix),
  strings (code point order, i.e. binary UTF-8) and, in props, booleans (``true`` is not ``1``).
  Columns have no boolean type, so a boolean compares to a column as 1/0.
- ``$ne`` and ``$nin`` are exact negations of ``$eq`` and ``$in``: a missing key is "not equal".
  ``$lt``/``$gt``... never match a missing key or a value of another type.
- ``$contains``: substring of a string (``%``/``_`` are literal), or element of a props array.

All values reach SQLite as bound parameters, never as SQL text. Limits: nesting depth 32,
1,000 conditions, 10,000 values per ``$in``/``$nin`` list and 20,000 in all.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from loomdb.errors import InvalidFilter

__all__ = [
    "COLUMN_NAMES",
    "DEFAULT_COLUMNS",
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
    "to_sqlite",
]

Scalar = str | float | bool | None

COLUMN_NAMES: Final = (
    *("id", "kind", "text", "source", "category", "confidence", "strength", "access_count"),
    *("created", "updated", "last_accessed"),
)
DEFAULT_COLUMNS: Final[Mapping[str, str]] = MappingProxyType({c: f"n.{c}" for c in COLUMN_NAMES})

MAX_DEPTH: Final = 32
MAX_CONDITIONS: Final = 1_000
MAX_LIST_ITEMS: Final = 10_000
MAX_TOTAL_ITEMS: Final = 20_000  # all $in/$nin lists together: stays under SQLite's 32766 `?`
MAX_PATH_KEYS: Final = 32

_KEY = re.compile(r"[\w\- ]{1,64}")
_INT64 = range(-(2**63), 2**63)
_COMPARE_OPS: Final = ("$eq", "$lt", "$lte", "$gt", "$gte")
_OPERATORS: Final = (*_COMPARE_OPS, "$ne", "$in", "$nin", "$exists", "$contains")
_SQL_OPS: Final = {"$eq": "=", "$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
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


# --------------------------------------------------------------------------- SQL


@dataclass(frozen=True)
class _Sql:
    """A SQL fragment and the parameters of its ``?`` placeholders, in order."""

    text: str
    params: tuple[object, ...] = ()


def _join(*parts: _Sql | str) -> _Sql:
    """Concatenate raw SQL text and fragments, keeping parameters in placeholder order."""
    pieces = [_Sql(part) if isinstance(part, str) else part for part in parts]
    return _Sql("".join(p.text for p in pieces), tuple(x for p in pieces for x in p.params))


def _combine(parts: list[_Sql], glue: str) -> _Sql:
    """``(a glue b glue ...)`` as a balanced tree: SQLite caps expression depth at 1000."""
    if len(parts) == 1:
        return parts[0]
    half = len(parts) // 2
    return _join("(", _combine(parts[:half], glue), glue, _combine(parts[half:], glue), ")")


def _bind(value: object) -> _Sql:
    return _Sql("?", (value,))


def _sql_types(value: Scalar) -> tuple[str, ...]:
    """The SQLite type names (``typeof``/``json_type``) a value equals or orders against."""
    if isinstance(value, bool):
        return ("true",) if value else ("false",)
    if isinstance(value, str):
        return ("text",)
    return ("integer", "real")


def _is(names: tuple[str, ...]) -> str:
    """`` = 'text'`` or `` IN ('integer', 'real')``: the test a type expression must pass."""
    if len(names) == 1:
        return f" = '{names[0]}'"
    return " IN (" + ", ".join(f"'{name}'" for name in names) + ")"


def _json_path(field: Field) -> str:
    """``$."a"."b"``: safe to quote because keys cannot hold ``"`` or ``\\``."""
    return "$" + "".join(f'."{key}"' for key in field.path)


class _SqlWriter:
    """Translates an AST to a boolean SQL expression that is never NULL (so NOT is exact).

    Every leaf is ``(type test AND value test)``: the type test is never NULL and makes the
    value non-NULL, and comparing only within a type class sidesteps SQLite's cross-type order.
    """

    def __init__(self, columns: Mapping[str, str], props_column: str) -> None:
        self.columns = columns
        self.props = props_column

    def node(self, ast: FilterNode) -> _Sql:
        if isinstance(ast, And | Or):
            if not ast.children:
                return _Sql("1" if isinstance(ast, And) else "0")
            glue = " AND " if isinstance(ast, And) else " OR "
            return _combine([self.node(child) for child in ast.children], glue)
        if isinstance(ast, Not):
            return _join("NOT ", self.node(ast.child))
        if isinstance(ast, In):
            return self.member(ast)
        if isinstance(ast, Contains):
            return self.contains(ast)
        return self.compare(ast)

    def column(self, field: Field) -> str:
        assert field.column is not None
        if field.column not in self.columns:
            raise InvalidFilter(f"field {_show(field.column)} has no column here")
        return f"({self.columns[field.column]})"

    def type_of(self, field: Field) -> _Sql:
        if field.column is not None:
            return _Sql(f"typeof{self.column(field)}")
        return _Sql(f"COALESCE(json_type({self.props}, ?), 'null')", (_json_path(field),))

    def value_of(self, field: Field, *, no_affinity: bool = False) -> _Sql:
        """The field's value; ``no_affinity`` stops a REAL column turning '5' into 5 in ``<``."""
        if field.column is not None:
            return _Sql(("+" if no_affinity else "") + self.column(field))
        return _Sql(f"json_extract({self.props}, ?)", (_json_path(field),))

    def typed(self, field: Field, types: tuple[str, ...], test: _Sql | None = None) -> _Sql:
        """``(field is one of types [AND test])``."""
        check = _join("(", self.type_of(field), _is(types))
        return _join(check, ")") if test is None else _join(check, " AND ", test, ")")

    def is_null(self, field: Field) -> _Sql:
        if field.column is not None:
            return _Sql(f"({self.column(field)} IS NULL)")
        return self.typed(field, ("null",))

    def compare(self, ast: Compare) -> _Sql:
        field, value = ast.field, ast.value
        if value is None:
            return self.is_null(field)
        if isinstance(value, bool):
            return self.typed(field, _sql_types(value))
        text = isinstance(value, str)
        left = self.value_of(field, no_affinity=text and ast.op != "$eq")
        right = _Sql(" COLLATE BINARY" if text else "", (value,))
        return self.typed(field, _sql_types(value), _join(left, f" {_SQL_OPS[ast.op]} ?", right))

    def member(self, ast: In) -> _Sql:
        groups: dict[tuple[str, ...], list[Scalar]] = {}
        for value in ast.values:
            groups.setdefault(("null",) if value is None else _sql_types(value), []).append(value)
        parts = [self.member_group(ast.field, types, vals) for types, vals in groups.items()]
        return _combine(parts, " OR ") if parts else _Sql("0")

    def member_group(self, field: Field, types: tuple[str, ...], values: list[Scalar]) -> _Sql:
        if types == ("null",):
            return self.is_null(field)
        if types[0] in ("true", "false"):
            return self.typed(field, types)
        collate = " COLLATE BINARY" if types == ("text",) else ""
        marks = ", ".join("?" for _ in values)
        test = _join(self.value_of(field), _Sql(f"{collate} IN ({marks})", tuple(values)))
        return self.typed(field, types, test)

    def contains(self, ast: Contains) -> _Sql:
        field, value = ast.field, ast.value
        parts: list[_Sql] = []
        if isinstance(value, str):
            found = _join("instr(", self.value_of(field), ", ", _bind(value), ") > 0")
            parts.append(self.typed(field, ("text",), found))
        if field.column is None:
            parts.append(self.typed(field, ("array",), self.array_has(field, value)))
        return _combine(parts, " OR ")

    def array_has(self, field: Field, value: str | float | bool) -> _Sql:
        """``EXISTS`` an element of the props array equal to ``value`` (``$eq`` semantics)."""
        test = _Sql("_e.type" + _is(_sql_types(value)))
        if not isinstance(value, bool):
            test = _join(test, " AND _e.value = ", _bind(value))
        each = _Sql(f"json_each({self.props}, ?) AS _e", (_json_path(field),))
        return _join("EXISTS (SELECT 1 FROM ", each, " WHERE ", test, ")")


def to_sqlite(
    ast: FilterNode | None,
    columns: Mapping[str, str] = DEFAULT_COLUMNS,
    props_column: str = "n.props",
) -> tuple[str, list[object]]:
    """Translate a parsed filter to a SQLite boolean expression and its bound parameters.

    Args:
        ast: From :func:`parse_filter`; ``None`` gives ``"1"`` (match all).
        columns: Filter field name -> trusted SQL expression of that column.
        props_column: Trusted SQL expression of the JSON ``props`` column.

    The expression is always 0 or 1 (never NULL) and agrees with :func:`matches` row by row.
    """
    if ast is None:
        return "1", []
    sql = _SqlWriter(columns, props_column).node(ast)
    return sql.text, list(sql.params)


# --------------------------------------------------------------------------- Python


_MISSING: Final = None  # a missing key reads as null: the two are one thing in filters
_OPAQUE: Final = object()  # a column value SQLite could not hold (list, dict): equals nothing


def matches(ast: FilterNode | None, node: Mapping[str, object]) -> bool:
    """Evaluate a filter against a row dict (columns by name, ``"props"`` as a dict).

    Gives the same answer as :func:`to_sqlite`'s SQL run on the stored row.
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
