"""The SQLite dialect of the filter builder (``storage/sql_filters.py``).

Every leaf is ``(type test AND value test)``: the type test reads ``typeof(column)`` or
``json_type(props, path)`` (null for a missing key), is never NULL and makes the value
non-NULL; comparing only within one type class sidesteps SQLite's cross-type ordering.
Strings compare ``COLLATE BINARY`` (code point order); JSON paths are bound as parameters.
"""

from __future__ import annotations

from typing import Final

from ...filters import Scalar
from ..sql_filters import Dialect, Sql, Target, join

__all__ = ["SQLITE", "SqliteDialect"]

NUMBER: Final = ("integer", "real")
TEXT: Final = ("text",)


def _types(value: Scalar) -> tuple[str, ...]:
    """The SQLite type names (``typeof``/``json_type``) a value equals or orders against."""
    if isinstance(value, bool):
        return ("true",) if value else ("false",)
    return TEXT if isinstance(value, str) else NUMBER


def _is(names: tuple[str, ...]) -> str:
    """`` = 'text'`` or `` IN ('integer', 'real')``: the test a type expression must pass."""
    if len(names) == 1:
        return f" = '{names[0]}'"
    return " IN (" + ", ".join(f"'{name}'" for name in names) + ")"


def _json_path(target: Target) -> str:
    """``$."a"."b"``: safe to quote because keys cannot hold ``"`` or ``\\``."""
    return "$" + "".join(f'."{key}"' for key in target.path)


def _marks(values: list[str] | list[float]) -> Sql:
    return Sql("(" + ", ".join("?" for _ in values) + ")", tuple(values))


class SqliteDialect(Dialect):
    """Filters over a SQLite row: dynamic column types, props as JSON text."""

    true = "1"
    false = "0"

    @staticmethod
    def type_of(target: Target) -> Sql:
        if target.column is not None:
            return Sql(f"typeof{target.sql}")
        return Sql(f"COALESCE(json_type({target.sql}, ?), 'null')", (_json_path(target),))

    @staticmethod
    def value_of(target: Target, *, no_affinity: bool = False) -> Sql:
        """The field's value; ``no_affinity`` stops a REAL column turning '5' into 5 in ``<``."""
        if target.column is not None:
            return Sql(("+" if no_affinity else "") + target.sql)
        return Sql(f"json_extract({target.sql}, ?)", (_json_path(target),))

    def typed(self, target: Target, types: tuple[str, ...], test: Sql | None = None) -> Sql:
        """``(field is one of types [AND test])``."""
        check = join("(", self.type_of(target), _is(types))
        return join(check, ")") if test is None else join(check, " AND ", test, ")")

    def is_null(self, target: Target) -> Sql:
        if target.column is not None:
            return Sql(f"({target.sql} IS NULL)")
        return self.typed(target, ("null",))

    def is_bool(self, target: Target, value: bool) -> Sql:
        return self.typed(target, _types(value))

    def compare_text(self, target: Target, op: str, value: str) -> Sql:
        left = self.value_of(target, no_affinity=op != "=")
        return self.typed(target, TEXT, join(left, f" {op} ? COLLATE BINARY", Sql("", (value,))))

    def compare_number(self, target: Target, op: str, value: float) -> Sql:
        return self.typed(target, NUMBER, join(self.value_of(target), f" {op} ?",
                                               Sql("", (value,))))

    def any_text(self, target: Target, values: list[str]) -> Sql:
        test = join(self.value_of(target), " COLLATE BINARY IN ", _marks(values))
        return self.typed(target, TEXT, test)

    def any_number(self, target: Target, values: list[float]) -> Sql:
        return self.typed(target, NUMBER, join(self.value_of(target), " IN ", _marks(values)))

    def text_contains(self, target: Target, value: str) -> Sql:
        found = join("instr(", self.value_of(target), ", ?) > 0", Sql("", (value,)))
        return self.typed(target, TEXT, found)

    def array_contains(self, target: Target, value: str | float | bool) -> Sql:
        test = Sql("_e.type" + _is(_types(value)))
        if not isinstance(value, bool):
            test = join(test, " AND _e.value = ?", Sql("", (value,)))
        each = Sql(f"json_each({target.sql}, ?) AS _e", (_json_path(target),))
        return self.typed(target, ("array",), join("EXISTS (SELECT 1 FROM ", each, " WHERE ",
                                                   test, ")"))


SQLITE: Final = SqliteDialect()
