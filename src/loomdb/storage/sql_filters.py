"""Filters as SQL: the one builder that turns a ``loomdb.filters`` AST into a WHERE expression.

The builder owns the structure every backend shares, so the semantics documented in
``loomdb.filters`` are written once:

- ``$and``/``$or`` become balanced trees of ``AND``/``OR`` (an empty one is true/false), and
  ``$not`` a plain ``NOT``: every leaf is a ``(type test AND value test)`` that is never
  NULL, so negation is exact (``$ne``/``$nin`` match a missing key).
- A comparison dispatches on its value: null (missing and JSON null are one thing), a
  boolean, a string or a number, each compared only within its own type.
- ``$in`` is one test per type class of its values, OR-ed; ``$contains`` is "substring of a
  string" OR (for props) "element of an array".

A :class:`Dialect` writes those leaf tests for one database: how it reads a JSON path, tests
a type, binds a parameter (``?`` or ``%s``), compares strings by code point and numbers
exactly. Values are always bound parameters, never SQL text; only the trusted column
expressions and JSON path keys (checked by the parser) are written into the SQL.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from ..errors import InvalidFilter
from ..filters import COLUMN_NAMES, And, Compare, Contains, Field, FilterNode, In, Not, Or, Scalar

__all__ = ["DEFAULT_COLUMNS", "Dialect", "Sql", "Target", "combine", "join", "to_sql"]

DEFAULT_COLUMNS: Final[Mapping[str, str]] = MappingProxyType({c: f"n.{c}" for c in COLUMN_NAMES})
SQL_OPS: Final = {"$eq": "=", "$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}


@dataclass(frozen=True)
class Sql:
    """A SQL fragment and the values of its placeholders, in order."""

    text: str
    params: tuple[object, ...] = ()


def join(*parts: Sql | str) -> Sql:
    """Concatenate raw SQL text and fragments, keeping parameters in placeholder order."""
    pieces = [Sql(part) if isinstance(part, str) else part for part in parts]
    return Sql("".join(p.text for p in pieces), tuple(x for p in pieces for x in p.params))


def combine(parts: list[Sql], glue: str) -> Sql:
    """``(a glue b glue ...)`` as a balanced tree, so a long list does not nest deeply
    (SQLite caps expression depth at 1000)."""
    if len(parts) == 1:
        return parts[0]
    half = len(parts) // 2
    return join("(", combine(parts[:half], glue), glue, combine(parts[half:], glue), ")")


@dataclass(frozen=True)
class Target:
    """A filter field resolved to SQL: a column (``column`` names it, ``sql`` is its trusted
    expression) or a path inside props (``column`` is None, ``sql`` is the props column)."""

    column: str | None
    sql: str
    path: tuple[str, ...] = ()


class Dialect(ABC):
    """The leaf tests of one database. Each returns a boolean expression that is never NULL;
    ``op`` is one of ``= < <= > >=``."""

    true: str = "TRUE"
    false: str = "FALSE"

    @abstractmethod
    def is_null(self, target: Target) -> Sql:
        """The field is NULL, missing or JSON null."""

    @abstractmethod
    def is_bool(self, target: Target, value: bool) -> Sql:
        """The field is the JSON boolean ``value`` (columns hold no booleans)."""

    @abstractmethod
    def compare_text(self, target: Target, op: str, value: str) -> Sql:
        """The field is a string and ``field op value`` holds, by code point."""

    @abstractmethod
    def compare_number(self, target: Target, op: str, value: float) -> Sql:
        """The field is a number and ``field op value`` holds (ints and floats mix)."""

    @abstractmethod
    def any_text(self, target: Target, values: list[str]) -> Sql:
        """The field is a string equal to one of ``values``."""

    @abstractmethod
    def any_number(self, target: Target, values: list[float]) -> Sql:
        """The field is a number equal to one of ``values``."""

    @abstractmethod
    def text_contains(self, target: Target, value: str) -> Sql:
        """The field is a string holding ``value`` (``%`` and ``_`` are literal)."""

    @abstractmethod
    def array_contains(self, target: Target, value: str | float | bool) -> Sql:
        """The props field is an array with an element equal to ``value`` (``$eq``)."""


def _is_number(value: Scalar) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Builder:
    """Walks an AST once, asking the dialect for each leaf."""

    def __init__(self, dialect: Dialect, columns: Mapping[str, str], props_column: str) -> None:
        self.dialect = dialect
        self.columns = columns
        self.props = props_column

    def node(self, ast: FilterNode) -> Sql:
        if isinstance(ast, And | Or):
            if not ast.children:
                return Sql(self.dialect.true if isinstance(ast, And) else self.dialect.false)
            glue = " AND " if isinstance(ast, And) else " OR "
            return combine([self.node(child) for child in ast.children], glue)
        if isinstance(ast, Not):
            return join("NOT ", self.node(ast.child))
        if isinstance(ast, In):
            return self.member(ast)
        if isinstance(ast, Contains):
            return self.contains(ast)
        return self.compare(ast)

    def target(self, field: Field) -> Target:
        if field.column is None:
            return Target(None, self.props, field.path)
        if field.column not in self.columns:
            raise InvalidFilter(f"field {field.column!r} has no column here")
        return Target(field.column, f"({self.columns[field.column]})")

    def compare(self, ast: Compare) -> Sql:
        target, value, op = self.target(ast.field), ast.value, SQL_OPS[ast.op]
        if value is None:
            return self.dialect.is_null(target)
        if isinstance(value, bool):
            return self.dialect.is_bool(target, value)
        if isinstance(value, str):
            return self.dialect.compare_text(target, op, value)
        return self.dialect.compare_number(target, op, value)

    def member(self, ast: In) -> Sql:
        target, values = self.target(ast.field), ast.values
        parts: list[Sql] = []
        if any(v is None for v in values):
            parts.append(self.dialect.is_null(target))
        parts += [self.dialect.is_bool(target, flag) for flag in (True, False)
                  if any(v is flag for v in values)]
        strings = [v for v in values if isinstance(v, str)]
        if strings:
            parts.append(self.dialect.any_text(target, strings))
        numbers = [v for v in values if _is_number(v)]
        if numbers:
            parts.append(self.dialect.any_number(target, numbers))  # type: ignore[arg-type]
        return combine(parts, " OR ") if parts else Sql(self.dialect.false)

    def contains(self, ast: Contains) -> Sql:
        target, value = self.target(ast.field), ast.value
        parts: list[Sql] = []
        if isinstance(value, str):
            parts.append(self.dialect.text_contains(target, value))
        if target.column is None:
            parts.append(self.dialect.array_contains(target, value))
        return combine(parts, " OR ") if parts else Sql(self.dialect.false)


def to_sql(
    ast: FilterNode | None,
    dialect: Dialect,
    columns: Mapping[str, str] = DEFAULT_COLUMNS,
    props_column: str = "n.props",
) -> tuple[str, list[object]]:
    """Translate a parsed filter to a boolean SQL expression of ``dialect`` and its bound
    parameters.

    Args:
        ast: From :func:`loomdb.filters.parse_filter`; ``None`` matches everything.
        dialect: The database's leaf tests (``sqlite.filters.SQLITE``,
            ``postgres.filters.POSTGRES``).
        columns: Filter field name -> trusted SQL expression of that column.
        props_column: Trusted SQL expression of the JSON ``props`` column.

    The expression is never NULL and agrees with :func:`loomdb.filters.matches` row by row.
    ``InvalidFilter`` if the filter names a field that ``columns`` lacks.
    """
    if ast is None:
        return dialect.true, []
    sql = _Builder(dialect, columns, props_column).node(ast)
    return sql.text, list(sql.params)
