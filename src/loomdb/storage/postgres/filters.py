"""The PostgreSQL dialect of the filter builder (``storage/sql_filters.py``): the semantics of
:func:`loomdb.filters.matches` on typed columns and a ``json`` props column, values bound.

- Columns have one static type (``COLUMN_TYPES``): a string never matches a number column,
  nor a number a text column. JSON values are typed by ``json_typeof`` (null when missing).
- Strings compare by code point (``COLLATE "C"``, byte order of UTF-8). PostgreSQL text cannot
  hold NUL, so a stored string never contains one: a filter string with NUL equals nothing,
  contains-tests with it fail, and an order test compares against its part before the NUL
  (which gives the same answer for every NUL-free string).
- Numbers compare exactly, like Python: float columns against floats (an integer that no
  float equals is turned into the equivalent float bound), integer columns and JSON integers
  as ``numeric``; JSON floats (text with ``.``/``e``) and JSON integers beyond 64 bits as
  ``float8`` (SQLite reads those as REAL; :func:`loomdb.filters.matches` mirrors it).
- A props path through a non-object is missing (``->`` with a text key, never ``#>``, which
  would index arrays by digit keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from ..sql_filters import Dialect, Sql, Target, join

__all__ = ["COLUMN_TYPES", "POSTGRES", "PostgresDialect", "float_bound"]

COLUMN_TYPES: Final[Mapping[str, str]] = MappingProxyType({
    **dict.fromkeys(("id", "kind", "text", "source", "category"), "text"),
    **dict.fromkeys(("confidence", "strength", "created", "updated", "last_accessed"), "float"),
    "access_count": "int",
})
_INT64_BOUNDS: Final = "BETWEEN -9223372036854775808 AND 9223372036854775807"
_FALSE: Final = Sql("FALSE")


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


def _kind(target: Target) -> str:
    """A column's type: ``text``, ``float`` or ``int``."""
    assert target.column is not None
    return COLUMN_TYPES.get(target.column, "text")


def _json_of(target: Target) -> Sql:
    """The JSON value at the props path (SQL NULL when missing)."""
    arrows = "".join(" -> %s::text" for _ in target.path)
    return Sql(f"({target.sql}{arrows})", target.path)


def _typed(value_of: Sql, name: str, test: Sql) -> Sql:
    """``(the JSON value is of type name AND test)``."""
    return join("(COALESCE(json_typeof(", value_of, f"), 'null') = '{name}' AND ", test, ")")


def _text_compare(expr: Sql, op: str, value: str) -> Sql:
    test = _nul_free(op, value)
    if test is None:
        return _FALSE
    collate = "" if test[0] == "=" else ' COLLATE "C"'
    return join("(", expr, " IS NOT NULL AND ", expr, f"{collate} {test[0]} %s::text",
                Sql("", (test[1],)), ")")


def _float_compare(sql: str, op: str, value: float) -> Sql:
    bound = float_bound(op, value)
    if bound is None:
        return _FALSE
    return Sql(f"({sql} IS NOT NULL AND {sql} {bound[0]} %s::float8)", (bound[1],))


def _float_or_exact(value_of: Sql, float_suffix: Sql | None, exact_suffix: Sql) -> Sql:
    """A JSON number tested as float8 when it is a float or beyond 64 bits (SQLite reads
    those as REAL), else exactly as numeric: ``value::text`` followed by a suffix (no float
    suffix: that test never holds)."""
    text = join(value_of, "::text")
    float_test = _FALSE if float_suffix is None else join(text, float_suffix)
    return join("CASE WHEN ", text, " ~ '[.eE]' OR NOT ", text, f"::numeric {_INT64_BOUNDS} "
                "THEN ", float_test, " ELSE ", text, exact_suffix, " END")


class PostgresDialect(Dialect):
    """Filters over a PostgreSQL row: typed columns, props as ``json``."""

    def is_null(self, target: Target) -> Sql:
        if target.column is not None:
            return Sql(f"({target.sql} IS NULL)")
        return join("(COALESCE(json_typeof(", _json_of(target), "), 'null') = 'null')")

    def is_bool(self, target: Target, value: bool) -> Sql:
        if target.column is not None:
            return _FALSE
        value_of = _json_of(target)
        return _typed(value_of, "boolean", join(value_of, f"::text = '{str(value).lower()}'"))

    def compare_text(self, target: Target, op: str, value: str) -> Sql:
        if target.column is None:
            value_of = _json_of(target)
            text = _text_compare(join("(", value_of, " #>> '{}')"), op, value)
            return _typed(value_of, "string", text)
        if _kind(target) != "text":
            return _FALSE
        return _text_compare(Sql(target.sql), op, value)

    def compare_number(self, target: Target, op: str, value: float) -> Sql:
        if target.column is None:
            value_of, bound = _json_of(target), float_bound(op, value)
            float_suffix = None if bound is None else Sql(f"::float8 {bound[0]} %s::float8",
                                                          (bound[1],))
            exact_suffix = Sql(f"::numeric {op} %s::numeric", (_exact(value),))
            return _typed(value_of, "number", _float_or_exact(value_of, float_suffix,
                                                              exact_suffix))
        sql, kind = target.sql, _kind(target)
        if kind == "text":
            return _FALSE
        if kind == "float":
            return _float_compare(sql, op, value)
        return Sql(f"({sql} IS NOT NULL AND {sql} {op} %s::numeric)", (_exact(value),))

    def any_text(self, target: Target, values: list[str]) -> Sql:
        strings = [v for v in values if "\x00" not in v]
        if not strings:
            return _FALSE
        if target.column is None:
            value_of = _json_of(target)
            return _typed(value_of, "string", join("(", value_of, " #>> '{}') = ANY(%s::text[])",
                                                   Sql("", (strings,))))
        if _kind(target) != "text":
            return _FALSE
        return Sql(f"({target.sql} IS NOT NULL AND {target.sql} = ANY(%s::text[]))", (strings,))

    def any_number(self, target: Target, values: list[float]) -> Sql:
        floats = [b[1] for b in (float_bound("=", v) for v in values) if b is not None]
        exact = [_exact(v) for v in values]
        if target.column is None:
            value_of = _json_of(target)
            return _typed(value_of, "number", _float_or_exact(
                value_of, Sql("::float8 = ANY(%s::float8[])", (floats,)),
                Sql("::numeric = ANY(%s::numeric[])", (exact,))))
        sql, kind = target.sql, _kind(target)
        if kind == "text":
            return _FALSE
        if kind == "float":
            return Sql(f"({sql} IS NOT NULL AND {sql} = ANY(%s::float8[]))", (floats,))
        return Sql(f"({sql} IS NOT NULL AND {sql} = ANY(%s::numeric[]))", (exact,))

    def text_contains(self, target: Target, value: str) -> Sql:
        if "\x00" in value:
            return _FALSE
        if target.column is None:
            value_of = _json_of(target)
            return _typed(value_of, "string", join("strpos(", value_of, " #>> '{}', %s::text) > 0",
                                                   Sql("", (value,))))
        if _kind(target) != "text":
            return _FALSE
        return Sql(f"({target.sql} IS NOT NULL AND strpos({target.sql}, %s::text) > 0)", (value,))

    def array_contains(self, target: Target, value: str | float | bool) -> Sql:
        value_of, element = _json_of(target), Target(None, "_e")
        if isinstance(value, bool):
            test = self.is_bool(element, value)
        elif isinstance(value, str):
            test = self.compare_text(element, "=", value)
        else:
            test = self.compare_number(element, "=", value)
        return join("CASE WHEN COALESCE(json_typeof(", value_of, "), 'null') = 'array' THEN "
                    "EXISTS (SELECT 1 FROM json_array_elements(", value_of, ") AS _e WHERE ",
                    test, ") ELSE FALSE END")


POSTGRES: Final = PostgresDialect()
