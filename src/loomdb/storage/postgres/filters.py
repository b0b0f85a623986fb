"""Filters as PostgreSQL: the AST of ``loomdb.filters`` translated with the semantics of
``to_sqlite`` and ``matches`` (see that module for the grammar), values always bound.

How the SQLite semantics carry over to typed columns and a ``json`` props column:

- Each leaf is ``(type test AND value test)`` and never NULL, so ``NOT`` is exact. Columns
  have one static type: a string never matches a number column, nor a number a text column.
- Strings compare by code point (``COLLATE "C"``, byte order of UTF-8). PostgreSQL text cannot
  hold NUL, so a stored string never contains one: a filter string with NUL equals nothing,
  contains-tests with it fail, and an order test compares against its part before the NUL
  (which gives the same answer for every NUL-free string).
- Numbers compare exactly, like Python: float columns against floats (an integer that no
  float equals is turned into the equivalent float bound), integer columns and JSON integers
  as ``numeric``; JSON floats (text with ``.``/``e``) and JSON integers beyond 64 bits as
  ``float8`` (SQLite reads those as REAL; :func:`loomdb.filters.matches` mirrors it).
- Missing keys and JSON null are one thing; a props path through a non-object is missing
  (``->`` with a text key, never ``#>``, which would index arrays by digit keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from ...errors import InvalidFilter
from ...filters import (
    COLUMN_NAMES,
    And,
    Contains,
    Field,
    FilterNode,
    In,
    Not,
    Or,
    Scalar,
)

__all__ = ["COLUMN_TYPES", "DEFAULT_COLUMNS", "to_postgres"]

DEFAULT_COLUMNS: Final[Mapping[str, str]] = MappingProxyType({c: f"n.{c}" for c in COLUMN_NAMES})
COLUMN_TYPES: Final[Mapping[str, str]] = MappingProxyType({
    **dict.fromkeys(("id", "kind", "text", "source", "category"), "text"),
    **dict.fromkeys(("confidence", "strength", "created", "updated", "last_accessed"), "float"),
    "access_count": "int",
})
_SQL_OPS: Final = {"$eq": "=", "$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
_INT64_BOUNDS: Final = "BETWEEN -9223372036854775808 AND 9223372036854775807"
_TRUE, _FALSE = "TRUE", "FALSE"


@dataclass(frozen=True)
class _Sql:
    text: str
    params: tuple[object, ...] = ()


def _join(*parts: _Sql | str) -> _Sql:
    pieces = [_Sql(part) if isinstance(part, str) else part for part in parts]
    return _Sql("".join(p.text for p in pieces), tuple(x for p in pieces for x in p.params))


def _combine(parts: list[_Sql], glue: str) -> _Sql:
    """``(a glue b glue ...)`` as a balanced tree, so deep filters do not nest deeply."""
    if len(parts) == 1:
        return parts[0]
    half = len(parts) // 2
    return _join("(", _combine(parts[:half], glue), glue, _combine(parts[half:], glue), ")")


def _is_number(value: Scalar) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def float_bound(op: str, value: float) -> tuple[str, float] | None:
    """``(op', f)`` with ``x op value`` equal to ``x op' f`` for every float ``x`` (Python's
    exact int/float comparison); ``None`` when no float equals ``value`` (``=``)."""
    as_float = float(value)
    if not isinstance(value, int) or int(as_float) == value:
        return op, as_float
    if op == "=":
        return None
    if as_float > value:  # rounded up: no float lies strictly between value and as_float
        return {"<": "<", "<=": "<", ">": ">=", ">=": ">="}[op], as_float
    return {"<": "<=", "<=": "<=", ">": ">", ">=": ">"}[op], as_float


def _exact(value: float) -> Decimal:
    """The exact value of a number as ``numeric`` (a float's full binary expansion)."""
    return Decimal(value)


def _nul_free(op: str, value: str) -> tuple[str, str] | None:
    """An equivalent test against NUL-free strings, or ``None`` if it can never hold."""
    if "\x00" not in value:
        return op, value
    if op == "=":
        return None
    prefix = value[: value.index("\x00")]
    return ("<=" if op in ("<", "<=") else ">"), prefix


class _PgWriter:
    """Translates an AST to a boolean PostgreSQL expression that is never NULL."""

    def __init__(self, columns: Mapping[str, str], props_column: str) -> None:
        self.columns = columns
        self.props = props_column

    def node(self, ast: FilterNode) -> _Sql:
        if isinstance(ast, And | Or):
            if not ast.children:
                return _Sql(_TRUE if isinstance(ast, And) else _FALSE)
            glue = " AND " if isinstance(ast, And) else " OR "
            return _combine([self.node(child) for child in ast.children], glue)
        if isinstance(ast, Not):
            return _join("NOT ", self.node(ast.child))
        if isinstance(ast, In):
            return self.member(ast.field, ast.values)
        if isinstance(ast, Contains):
            return self.contains(ast)
        return self.compare(ast.field, _SQL_OPS[ast.op], ast.value)

    # -- fields ----------------------------------------------------------------------------

    def column(self, field: Field) -> tuple[str, str]:
        """The column's SQL expression and its type (``text``, ``float`` or ``int``)."""
        assert field.column is not None
        if field.column not in self.columns:
            raise InvalidFilter(f"field {field.column!r} has no column here")
        return f"({self.columns[field.column]})", COLUMN_TYPES.get(field.column, "text")

    def json_of(self, field: Field) -> _Sql:
        """The JSON value at the props path (SQL NULL when missing)."""
        arrows = "".join(" -> %s::text" for _ in field.path)
        return _Sql(f"({self.props}{arrows})", tuple(field.path))

    # -- leaves ----------------------------------------------------------------------------

    def compare(self, field: Field, op: str, value: Scalar) -> _Sql:
        if field.column is None:
            return self.json_compare(self.json_of(field), op, value)
        sql, kind = self.column(field)
        if value is None:
            return _Sql(f"({sql} IS NULL)")
        if isinstance(value, str):
            return self.text_compare(_Sql(sql), op, value) if kind == "text" else _Sql(_FALSE)
        if kind == "text" or isinstance(value, bool):
            return _Sql(_FALSE)
        if kind == "float":
            return self.float_compare(sql, op, value)
        return _Sql(f"({sql} IS NOT NULL AND {sql} {op} %s::numeric)", (_exact(value),))

    @staticmethod
    def text_compare(expr: _Sql, op: str, value: str) -> _Sql:
        test = _nul_free(op, value)
        if test is None:
            return _Sql(_FALSE)
        collate = "" if test[0] == "=" else ' COLLATE "C"'
        return _join("(", expr, " IS NOT NULL AND ", expr, f"{collate} {test[0]} %s::text",
                     _Sql("", (test[1],)), ")")

    @staticmethod
    def float_compare(sql: str, op: str, value: float) -> _Sql:
        bound = float_bound(op, value)
        if bound is None:
            return _Sql(_FALSE)
        return _Sql(f"({sql} IS NOT NULL AND {sql} {bound[0]} %s::float8)", (bound[1],))

    def json_compare(self, value_of: _Sql, op: str, value: Scalar) -> _Sql:
        typed = _join("COALESCE(json_typeof(", value_of, "), 'null')")
        if value is None:
            return _join("(", typed, " = 'null')")
        if isinstance(value, bool):
            literal = "true" if value else "false"
            return _join("(", typed, " = 'boolean' AND ", value_of, f"::text = '{literal}')")
        if isinstance(value, str):
            text = self.text_compare(_join("(", value_of, " #>> '{}')"), op, value)
            return _join("(", typed, " = 'string' AND ", text, ")")
        return _join("(", typed, " = 'number' AND ", self.json_number(value_of, op, value), ")")

    @staticmethod
    def json_number(value_of: _Sql, op: str, value: float) -> _Sql:
        """A JSON number against ``value``: as float8 when it is a float or beyond 64 bits
        (SQLite reads those as REAL), else exactly as numeric."""
        text = _join(value_of, "::text")
        as_float = float_bound(op, value)
        float_test = (_Sql(_FALSE) if as_float is None else
                      _join(text, f"::float8 {as_float[0]} %s::float8", _Sql("", (as_float[1],))))
        return _join("CASE WHEN ", text, " ~ '[.eE]' OR NOT ", text, f"::numeric {_INT64_BOUNDS} "
                     "THEN ", float_test, " ELSE ", text, f"::numeric {op} %s::numeric",
                     _Sql("", (_exact(value),)), " END")

    def member(self, field: Field, values: tuple[Scalar, ...]) -> _Sql:
        """``$in``: one test per distinct value type, OR-ed."""
        parts: list[_Sql] = []
        if any(v is None for v in values):
            parts.append(self.compare(field, "=", None))
        for flag in (True, False):
            if any(v is flag for v in values):
                parts.append(self.compare(field, "=", flag))
        strings = [v for v in values if isinstance(v, str) and "\x00" not in v]
        if strings:
            parts.append(self.any_text(field, strings))
        numbers = [v for v in values if _is_number(v)]
        if numbers:
            parts.append(self.any_number(field, numbers))  # type: ignore[arg-type]
        return _combine(parts, " OR ") if parts else _Sql(_FALSE)

    def any_text(self, field: Field, strings: list[str]) -> _Sql:
        if field.column is None:
            value_of = self.json_of(field)
            return _join("(COALESCE(json_typeof(", value_of, "), 'null') = 'string' AND (",
                         value_of, " #>> '{}') = ANY(%s::text[]))", _Sql("", (strings,)))
        sql, kind = self.column(field)
        if kind != "text":
            return _Sql(_FALSE)
        return _Sql(f"({sql} IS NOT NULL AND {sql} = ANY(%s::text[]))", (strings,))

    def any_number(self, field: Field, numbers: list[float]) -> _Sql:
        floats = [b[1] for b in (float_bound("=", v) for v in numbers) if b is not None]
        exact = [_exact(v) for v in numbers]
        if field.column is not None:
            sql, kind = self.column(field)
            if kind == "text":
                return _Sql(_FALSE)
            if kind == "float":
                return _Sql(f"({sql} IS NOT NULL AND {sql} = ANY(%s::float8[]))", (floats,))
            return _Sql(f"({sql} IS NOT NULL AND {sql} = ANY(%s::numeric[]))", (exact,))
        value_of = self.json_of(field)
        text = _join(value_of, "::text")
        return _join("(COALESCE(json_typeof(", value_of, "), 'null') = 'number' AND CASE WHEN ",
                     text, " ~ '[.eE]' OR NOT ", text, f"::numeric {_INT64_BOUNDS} THEN ", text,
                     "::float8 = ANY(%s::float8[])", _Sql("", (floats,)), " ELSE ", text,
                     "::numeric = ANY(%s::numeric[])", _Sql("", (exact,)), " END)")

    def contains(self, ast: Contains) -> _Sql:
        field, value = ast.field, ast.value
        if field.column is not None:
            sql, kind = self.column(field)
            if kind != "text" or not isinstance(value, str) or "\x00" in value:
                return _Sql(_FALSE)
            return _Sql(f"({sql} IS NOT NULL AND strpos({sql}, %s::text) > 0)", (value,))
        value_of = self.json_of(field)
        typed = _join("COALESCE(json_typeof(", value_of, "), 'null')")
        parts: list[_Sql] = []
        if isinstance(value, str) and "\x00" not in value:
            parts.append(_join("(", typed, " = 'string' AND strpos(", value_of,
                               " #>> '{}', %s::text) > 0)", _Sql("", (value,))))
        element = self.json_compare(_Sql("_e"), "=", value)
        parts.append(_join("CASE WHEN ", typed, " = 'array' THEN EXISTS (SELECT 1 FROM "
                           "json_array_elements(", value_of, ") AS _e WHERE ", element,
                           ") ELSE FALSE END"))
        return _combine(parts, " OR ")


def to_postgres(
    ast: FilterNode | None,
    columns: Mapping[str, str] = DEFAULT_COLUMNS,
    props_column: str = "n.props",
) -> tuple[str, list[object]]:
    """Translate a parsed filter to a PostgreSQL boolean expression with ``%s`` parameters.

    Args:
        ast: From :func:`loomdb.filters.parse_filter`; ``None`` gives ``"TRUE"``.
        columns: Filter field name -> trusted SQL expression of that column.
        props_column: Trusted SQL expression of the ``json`` props column.

    The expression is never NULL and agrees with ``matches`` on every row PostgreSQL can
    hold. The SQL text holds no ``%`` but placeholders, so psycopg can bind it as is.
    """
    if ast is None:
        return _TRUE, []
    sql = _PgWriter(columns, props_column).node(ast)
    return sql.text, list(sql.params)
