"""Filter translation: the SQL of ``storage/sql_filters.py`` on a real SQLite (and, below, a
real PostgreSQL) must agree with the Python evaluator."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loomdb.errors import InvalidFilter
from loomdb.filters import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_LIST_ITEMS,
    And,
    Compare,
    Field,
    parse_filter,
    referenced_fields,
)
from loomdb.filters import matches as py_matches
from loomdb.storage.sql_filters import to_sql
from loomdb.storage.sqlite.filters import SQLITE

SCHEMA = """
CREATE TABLE nodes (
    id TEXT, kind TEXT, text TEXT, props TEXT, source TEXT, category TEXT,
    confidence REAL, strength REAL, access_count INTEGER,
    created REAL, updated REAL, last_accessed REAL
)
"""
COLUMNS = (
    "id",
    "kind",
    "text",
    "source",
    "category",
    "confidence",
    "strength",
    "access_count",
    "created",
    "updated",
    "last_accessed",
)
# SQLite before 3.45 cuts JSON strings at an escaped NUL (\u0000) when reading them.
JSON_KEEPS_NUL = sqlite3.sqlite_version_info >= (3, 45)

ROWS: list[dict[str, Any]] = [
    {
        "id": "c1",
        "kind": "chunk",
        "text": "50% off_sale",
        "confidence": 0.9,
        "access_count": 1,
        "created": 100.0,
        "props": {
            "lang": "en",
            "tags": ["faq", "intro"],
            "n": 5,
            "flag": True,
            "meta": {"pages": 10, "author": "Ann"},
        },
    },
    {
        "id": "d1",
        "kind": "document",
        "text": "Hello world",
        "confidence": 0.4,
        "access_count": 0,
        "created": 200.0,
        "props": {"lang": "fr", "tags": [1, 2.5], "n": 5.0, "flag": False, "meta": {"pages": "10"}},
    },
    {
        "id": "s1",
        "kind": "chunk",
        "text": None,
        "confidence": None,
        "access_count": 7,
        "props": {"n": "5", "flag": 1, "lang": None, "tags": [True]},
    },
    {"id": "e1", "kind": "entity", "text": "", "access_count": 0, "props": {}},
    {
        "id": "h1",
        "kind": "chunk",
        "text": "'; DROP TABLE nodes; --",
        "source": "x\0y",
        "category": "😀",
        "access_count": 2,
        "props": {"tags": "faq-like", "quote": 'it\'s "q"', "emoji": "😀 ok"},
    },
    {
        "id": "o1",
        "kind": "entity",
        "strength": "!",
        "access_count": 3,
        "props": {"n": 9223372036854775807, "meta": [1, 2]},
    },
]
ALL = {row["id"] for row in ROWS}


def make_db(rows: list[dict[str, Any]]) -> sqlite3.Connection:
    """An in-memory ``nodes`` table holding ``rows`` (props stored as the store does)."""
    conn = sqlite3.connect(":memory:")
    conn.execute(SCHEMA)
    for row in rows:
        props = json.dumps(row.get("props", {}), ensure_ascii=False, allow_nan=False)
        values = [row.get(name) for name in COLUMNS] + [props]
        conn.execute(
            f"INSERT INTO nodes ({', '.join(COLUMNS)}, props) VALUES ({', '.join('?' * 12)})",
            values,
        )
    return conn


def stored(conn: sqlite3.Connection) -> dict[int, dict[str, object]]:
    """Each row as read back (after SQLite's type affinity), ready for ``matches``."""
    cursor = conn.execute(f"SELECT rowid, {', '.join(COLUMNS)}, props FROM nodes")
    out: dict[int, dict[str, object]] = {}
    for rowid, *values in cursor:
        node: dict[str, object] = dict(zip(COLUMNS, values[:-1], strict=True))
        node["props"] = json.loads(values[-1])
        out[rowid] = node
    return out


def sql_rowids(conn: sqlite3.Connection, expr: object) -> set[int]:
    sql, params = to_sql(parse_filter(expr), SQLITE)
    return {r for (r,) in conn.execute(f"SELECT rowid FROM nodes n WHERE {sql}", params)}


def py_rowids(conn: sqlite3.Connection, expr: object) -> set[int]:
    ast = parse_filter(expr)
    return {rowid for rowid, node in stored(conn).items() if py_matches(ast, node)}


def ids(conn: sqlite3.Connection, expr: object) -> set[str]:
    """Ids the filter selects; fails unless SQLite and ``matches`` agree."""
    sql_side, py_side = sql_rowids(conn, expr), py_rowids(conn, expr)
    assert sql_side == py_side, (expr, sql_side, py_side)
    by_rowid = {rowid: node["id"] for rowid, node in stored(conn).items()}
    return {str(by_rowid[rowid]) for rowid in sql_side}


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = make_db(ROWS)
    yield conn
    assert conn.execute("SELECT count(*) FROM nodes").fetchone() == (len(ROWS),)
    conn.close()


# --------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ({"kind": "chunk"}, {"c1", "s1", "h1"}),
        ({"kind": "chunk", "props.lang": "en"}, {"c1"}),
        ({"kind": {"$eq": "entity"}}, {"e1", "o1"}),
        ({"kind": {"$ne": "chunk"}}, {"d1", "e1", "o1"}),
        ({"kind": {"$in": ["document", "entity"]}}, {"d1", "e1", "o1"}),
        ({"kind": {"$nin": ["document", "entity"]}}, {"c1", "s1", "h1"}),
        ({"id": {"$gt": "d1"}}, {"s1", "e1", "h1", "o1"}),
        ({"id": {"$lte": "d1"}}, {"c1", "d1"}),
        ({"confidence": {"$gte": 0.5}}, {"c1"}),
        ({"confidence": {"$lt": 1}}, {"c1", "d1"}),
        ({"access_count": {"$gt": 1, "$lt": 7}}, {"h1", "o1"}),
        ({"created": {"$in": [100, 200.0]}}, {"c1", "d1"}),
        ({"props.meta.pages": 10}, {"c1"}),
        ({"props.meta.pages": "10"}, {"d1"}),
        ({"props.meta.author": {"$exists": True}}, {"c1"}),
        ({"props.quote": 'it\'s "q"'}, {"h1"}),
        ({"props.emoji": {"$gte": "😀"}}, {"h1"}),
    ],
)
def test_operators(db: sqlite3.Connection, expr: object, expected: set[str]) -> None:
    assert ids(db, expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ({"props.n": 5}, {"c1", "d1"}),  # 5 and 5.0 are the same number
        ({"props.n": "5"}, {"s1"}),  # a string is not a number
        ({"props.n": {"$gt": 4}}, {"c1", "d1", "o1"}),
        ({"props.n": {"$lt": "6"}}, {"s1"}),  # strings order among strings only
        ({"props.n": {"$in": ["5", 5]}}, {"c1", "d1", "s1"}),
        ({"props.n": {"$gte": 9223372036854775807}}, {"o1"}),
        ({"strength": {"$lt": "5"}}, {"o1"}),  # '!' < '5' even in a REAL column
        ({"strength": {"$gte": 0}}, set()),
    ],
)
def test_strings_and_numbers_never_mix(
    db: sqlite3.Connection, expr: object, expected: set[str]
) -> None:
    assert ids(db, expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ({"props.flag": True}, {"c1"}),
        ({"props.flag": False}, {"d1"}),
        ({"props.flag": 1}, {"s1"}),  # JSON true is not 1
        ({"props.flag": 0}, set()),
        ({"props.flag": {"$in": [True, 1]}}, {"c1", "s1"}),
        ({"props.flag": {"$ne": True}}, ALL - {"c1"}),
        ({"access_count": True}, {"c1"}),  # columns have no bool: True is 1
        ({"access_count": {"$in": [False]}}, {"d1", "e1"}),
    ],
)
def test_bools_are_not_ints_in_props(
    db: sqlite3.Connection, expr: object, expected: set[str]
) -> None:
    assert ids(db, expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ({"props.lang": None}, {"s1", "e1", "h1", "o1"}),  # null and missing alike
        ({"props.lang": {"$ne": None}}, {"c1", "d1"}),
        ({"props.lang": {"$exists": True}}, {"c1", "d1"}),
        ({"props.lang": {"$exists": False}}, {"s1", "e1", "h1", "o1"}),
        ({"props.lang": {"$ne": "en"}}, ALL - {"c1"}),  # missing != "en"
        ({"props.lang": {"$nin": ["en"]}}, ALL - {"c1"}),
        ({"props.lang": {"$in": ["en", None]}}, {"c1", "s1", "e1", "h1", "o1"}),
        ({"props.lang": {"$lt": "zz"}}, {"c1", "d1"}),  # ranges never match missing
        ({"props.lang": {"$in": []}}, set()),
        ({"props.lang": {"$nin": []}}, ALL),
        ({"text": None}, {"s1", "o1"}),
        ({"confidence": {"$exists": True}}, {"c1", "d1"}),
        ({"props.meta.pages.deeper": None}, ALL),  # through a scalar: missing
        ({"props.meta.x": None}, ALL),  # through an array: missing
    ],
)
def test_null_and_missing(db: sqlite3.Connection, expr: object, expected: set[str]) -> None:
    assert ids(db, expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ({"text": {"$contains": "%"}}, {"c1"}),  # literal, not a LIKE wildcard
        ({"text": {"$contains": "_"}}, {"c1"}),
        ({"text": {"$contains": "o"}}, {"c1", "d1", "h1"}),
        ({"text": {"$contains": "hello"}}, set()),  # case-sensitive
        ({"text": {"$contains": ""}}, {"c1", "d1", "e1", "h1"}),
        ({"source": {"$contains": "\0y"}}, {"h1"}),
        ({"props.tags": {"$contains": "faq"}}, {"c1", "h1"}),  # element, substring
        ({"props.tags": {"$contains": "fa"}}, {"h1"}),
        ({"props.tags": {"$contains": 1}}, {"d1"}),
        ({"props.tags": {"$contains": 2.5}}, {"d1"}),
        ({"props.tags": {"$contains": True}}, {"s1"}),
        ({"props.meta": {"$contains": 1}}, {"o1"}),
        ({"props.meta": {"$contains": "Ann"}}, set()),  # objects are not searched
        ({"props.emoji": {"$contains": "😀"}}, {"h1"}),
    ],
)
def test_contains(db: sqlite3.Connection, expr: object, expected: set[str]) -> None:
    assert ids(db, expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (None, ALL),
        ({}, ALL),
        ({"$and": []}, ALL),
        ({"$or": []}, set()),
        ({"$not": {}}, set()),
        ({"$or": [{"kind": "document"}, {"props.lang": "en"}]}, {"c1", "d1"}),
        ({"$and": [{"kind": "chunk"}, {"$not": {"props.flag": True}}]}, {"s1", "h1"}),
        ({"$not": {"$or": [{"kind": "chunk"}, {"kind": "entity"}]}}, {"d1"}),
        (
            {
                "$or": [
                    {"$and": [{"kind": "chunk"}, {"access_count": {"$gte": 2}}]},
                    {"$not": {"props.n": {"$exists": True}}},
                ]
            },
            {"s1", "h1", "e1"},
        ),
    ],
)
def test_nesting(db: sqlite3.Connection, expr: object, expected: set[str]) -> None:
    assert ids(db, expr) == expected


def test_empty_filters_parse_to_match_all() -> None:
    assert parse_filter(None) is None
    assert parse_filter({}) is None
    assert to_sql(None, SQLITE) == ("1", [])


def test_ast_and_referenced_fields() -> None:
    ast = parse_filter({"kind": "chunk", "$or": [{"props.a.b": {"$gt": 1}}, {"text": None}]})
    assert isinstance(ast, And)
    assert ast.children[0] == Compare(Field("kind"), "$eq", "chunk")
    assert referenced_fields(ast) == {"kind", "props.a.b", "text"}
    assert referenced_fields(None) == set()


def test_custom_columns_and_props_column() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (k TEXT, meta TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [("a", '{"x": 1}'), ("b", '{"x": 2}')])
    ast = parse_filter({"kind": "a", "props.x": 1}, fields={"kind"})
    sql, params = to_sql(ast, SQLITE, columns={"kind": "t.k"}, props_column="t.meta")
    assert conn.execute(f"SELECT k FROM t WHERE {sql}", params).fetchall() == [("a",)]
    with pytest.raises(InvalidFilter, match="no column"):
        to_sql(parse_filter({"source": "x"}), SQLITE, columns={"kind": "t.k"})


def test_values_are_bound_never_inlined() -> None:
    sql, params = to_sql(parse_filter({"kind": "x'; --", "props.a": {"$in": [1, "y"]}}), SQLITE)
    assert "x'" not in sql and "'y'" not in sql
    assert "x'; --" in params and '$."a"' in params


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    "value",
    ["'; DROP TABLE nodes; --", "\0", "a\0b", "😀", '" OR 1=1 --', "%", "\\", "$.a", "é" * 1000],
)
def test_hostile_values_are_just_values(db: sqlite3.Connection, value: str) -> None:
    for expr in (
        {"text": value},
        {"props.quote": {"$in": [value]}},
        {"props.tags": {"$contains": value}},
        {"text": {"$gt": value}},
        {"$not": {"source": {"$contains": value}}},
    ):
        ids(db, expr)
    assert ids(db, {"text": "'; DROP TABLE nodes; --"}) == {"h1"}
    assert ids(db, {"category": {"$contains": "😀"}}) == {"h1"}


@pytest.mark.parametrize(
    "key",
    [
        "a'b",
        'a"b',
        "a\0b",
        "a--b",
        "$x",
        "a$",
        "a[0]",
        "",
        "a" * 65,
        "a\\b",
        "a\nb",
        "\ud800",
        "a;b",
        "*",
        "a/b",
    ],
)
def test_hostile_props_keys_are_rejected_by_name(db: sqlite3.Connection, key: str) -> None:
    with pytest.raises(InvalidFilter, match="invalid props key") as info:
        parse_filter({f"props.{key}": 1})
    assert repr(key)[:60] in info.value.message or len(key) > 60


@pytest.mark.parametrize("key", ["a", "é", "日本", "a-b", "with space", "x_1", "a" * 64])
def test_word_keys_are_accepted(key: str) -> None:
    conn = make_db([{"id": "k", "props": {key: 1}}])
    assert ids(conn, {f"props.{key}": 1}) == {"k"}


def test_unknown_field_lists_allowed_fields() -> None:
    with pytest.raises(InvalidFilter, match=r"unknown field 'tenant'.*access_count.*props"):
        parse_filter({"tenant": "x"})


@pytest.mark.parametrize(
    "expr",
    [
        "kind",
        [],
        5,
        {1: 2},
        {"props": 1},
        {"props.": 1},
        {"props.a..b": 1},
        {"$xor": []},
        {"$and": {"kind": 1}},
        {"$or": "x"},
        {"$not": [1]},
        {"kind": {"$regex": "x"}},
        {"kind": {}},
        {"kind": {"a": 1}},
        {"kind": {"$eq": [1]}},
        {"kind": [1]},
        {"kind": {"$eq": {"$eq": 1}}},
        {"kind": {"$in": "abc"}},
        {"kind": {"$in": [[1]]}},
        {"kind": b"x"},
        {"kind": "\ud800"},
        {"confidence": float("nan")},
        {"confidence": float("inf")},
        {"access_count": 2**63},
        {"access_count": {"$lt": None}},
        {"kind": {"$gt": True}},
        {"kind": {"$exists": 1}},
        {"text": {"$contains": 1}},
        {"props.x": {"$contains": None}},
        {"props.x": {"$contains": [1]}},
        {"props." + ".".join("a" * 33): 1},
    ],
)
def test_malformed_filters_raise_invalid_filter(expr: object) -> None:
    with pytest.raises(InvalidFilter):
        parse_filter(expr)


def nested(depth: int) -> dict[str, object]:
    expr: dict[str, object] = {"kind": "chunk"}
    for level in range(depth - 1):
        expr = {"$not": expr} if level % 2 else {"$and": [expr]}
    return expr


def test_nesting_limit(db: sqlite3.Connection) -> None:
    assert ids(db, nested(MAX_DEPTH)) == ids(db, {"$not": {"kind": "chunk"}})
    with pytest.raises(InvalidFilter, match="nested"):
        parse_filter(nested(MAX_DEPTH + 1))
    with pytest.raises(InvalidFilter, match="nested"):
        parse_filter(nested(100_000 // 2))


def test_condition_limit(db: sqlite3.Connection) -> None:
    ok = {"$or": [{"props.n": {"$in": [i, str(i)]}} for i in range(MAX_CONDITIONS - 1)]}
    assert ids(db, ok) == {"c1", "d1", "s1"}
    with pytest.raises(InvalidFilter, match="conditions"):
        parse_filter({"$or": [{"kind": str(i)} for i in range(MAX_CONDITIONS)]})
    with pytest.raises(InvalidFilter, match="conditions"):
        parse_filter({"$and": [{}] * 10**6})


def test_huge_in_lists(db: sqlite3.Connection) -> None:
    values: list[object] = [f"v{i}" for i in range(MAX_LIST_ITEMS - 2)] + ["en", 5]
    assert ids(db, {"props.lang": {"$in": values}}) == {"c1"}
    assert ids(db, {"props.n": {"$nin": values}}) == ALL - {"c1", "d1"}
    big = list(range(MAX_LIST_ITEMS))
    assert ids(db, {"props.n": {"$in": big}, "kind": {"$nin": big}}) == {"c1", "d1"}
    with pytest.raises(InvalidFilter, match="more than"):
        parse_filter({"kind": {"$in": [*values, "x"]}})
    with pytest.raises(InvalidFilter, match="in all"):
        parse_filter({"$or": [{"kind": {"$in": big}} for _ in range(3)]})


# --------------------------------------------------------------------------- properties


def texts(*, nul: bool) -> st.SearchStrategy[str]:
    alphabet = st.characters(blacklist_categories=["Cs"] if nul else ["Cs", "Cc"])
    common = st.sampled_from(["", "a", "ab", "b", "A", "é", "😀", "5", "!", "%", "_", "'", "--"])
    return st.one_of(common, st.text(alphabet, max_size=4))


NUMBERS = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0.5, -1.5, 2.0, -0.0, 1e300, 2**63 - 1, -(2**63)]),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)
JSON_SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, texts(nul=JSON_KEEPS_NUL))
COLUMN_VALUES = st.one_of(st.none(), st.booleans(), NUMBERS, texts(nul=True))
PROPS_VALUES = st.one_of(
    JSON_SCALARS,
    st.lists(JSON_SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["x", "y"]), JSON_SCALARS, max_size=2),
)
PROPS = st.one_of(
    st.dictionaries(st.sampled_from(["a", "b", "tags", "m"]), PROPS_VALUES, max_size=4),
    st.lists(JSON_SCALARS, max_size=2),  # not an object: every path is missing
)
ROW = st.fixed_dictionaries(
    {"props": PROPS},
    optional={name: COLUMN_VALUES for name in ("kind", "text", "confidence", "access_count")},
)
FIELDS = [
    "kind",
    "text",
    "confidence",
    "access_count",
    "props.a",
    "props.b",
    "props.tags",
    "props.m.x",
    "props.a.x",
    "props.zz",
]
FILTER_SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, texts(nul=True))


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, object]:
    field = draw(st.sampled_from(FIELDS))
    op = draw(
        st.sampled_from(
            ["=", "$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin", "$exists", "$contains"]
        )
    )
    if op == "=":
        return {field: draw(FILTER_SCALARS)}
    if op in ("$in", "$nin"):
        return {field: {op: draw(st.lists(FILTER_SCALARS, max_size=4))}}
    if op == "$exists":
        return {field: {op: draw(st.booleans())}}
    if op == "$contains":
        pool = (
            texts(nul=True)
            if not field.startswith("props.")
            else FILTER_SCALARS.filter(lambda v: v is not None)
        )
        return {field: {op: draw(pool)}}
    if op in ("$eq", "$ne"):
        return {field: {op: draw(FILTER_SCALARS)}}
    return {field: {op: draw(st.one_of(NUMBERS, texts(nul=True)))}}


FILTERS = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.builds(lambda fs: {"$and": fs}, st.lists(inner, max_size=3)),
        st.builds(lambda fs: {"$or": fs}, st.lists(inner, max_size=3)),
        st.builds(lambda f: {"$not": f}, inner),
        st.lists(inner, min_size=2, max_size=2).map(lambda fs: {**fs[0], **fs[1]}),
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=FILTERS, rows=st.lists(ROW, max_size=8))
def test_sql_and_python_agree(expr: dict[str, object], rows: list[dict[str, Any]]) -> None:
    conn = make_db(rows)
    assert sql_rowids(conn, expr) == py_rowids(conn, expr)
    negated = {"$not": expr}
    assert sql_rowids(conn, negated) == set(stored(conn)) - sql_rowids(conn, expr)


ANY_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, texts(nul=True)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        *FIELDS,
                        "$and",
                        "$or",
                        "$not",
                        "$in",
                        "$eq",
                        "$lt",
                        "$contains",
                        "$exists",
                        "$bad",
                        "props",
                    ]
                ),
                texts(nul=True),
            ),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(expr=ANY_JSON)
def test_any_input_parses_or_raises_invalid_filter(expr: object) -> None:
    try:
        parse_filter(expr)
    except InvalidFilter:
        return
    conn = make_db(ROWS[:3])
    assert sql_rowids(conn, expr) == py_rowids(conn, expr)


def test_json_integers_beyond_64_bits_read_as_sqlite_reads_them() -> None:
    conn = make_db([{"id": "big", "props": {"n": 2**64 + 1}}])
    assert ids(conn, {"props.n": float(2**64)}) == {"big"}
    assert ids(conn, {"props.n": {"$gt": 2**63 - 1}}) == {"big"}


def test_matches_reads_plain_mappings() -> None:
    ast = parse_filter({"props.a": True, "access_count": True})
    node: Mapping[str, object] = {"access_count": True, "props": {"a": True}}
    assert py_matches(ast, node)
    assert not py_matches(ast, {"access_count": 1})
    assert not py_matches(parse_filter({"kind": {"$contains": "a"}}), {"kind": ["a"]})


# --------------------------------------------------------------------------- PostgreSQL
# The same agreement, for the postgres backend's translation: SQL run on a real PostgreSQL
# must select exactly the rows ``matches`` selects, on rows as PostgreSQL stores them (typed
# columns: no string in a number column, no NUL in text).

PG_SCHEMA = """
CREATE TABLE filter_rows (
    rid serial PRIMARY KEY, id text, kind text, text text, props json NOT NULL, source text,
    category text, confidence float8, strength float8, access_count int8, created float8,
    updated float8, last_accessed float8
)
"""


def _cases(*tests: Any) -> list[object]:
    """The filter expressions of the parametrized example tests above."""
    return [case[0] for test in tests for mark in test.pytestmark
            if mark.name == "parametrize" for case in mark.args[1]]


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\0", "\1")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {k: _without_nul(v) for k, v in value.items()}
    return value


def pg_storable(row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with what PostgreSQL's typed columns cannot hold left out, as loomdb would
    refuse it: strings in number columns, numbers in text columns, NUL in text."""
    from loomdb.storage.postgres.filters import COLUMN_TYPES

    kept: dict[str, Any] = {"props": _without_nul(row.get("props", {}))}
    for name in COLUMNS:
        value = row.get(name)
        value = int(value) if isinstance(value, bool) else value
        kind = COLUMN_TYPES[name]
        if kind == "text" and isinstance(value, str) and "\0" not in value:
            kept[name] = value
        elif kind == "float" and isinstance(value, int | float):
            kept[name] = float(value)
        elif kind == "int" and isinstance(value, int) and -(2**63) <= value < 2**63:
            kept[name] = value
    return kept


@pytest.fixture(scope="module")
def pg() -> Iterator[Any]:
    """A connection to a fresh database with a table like loomdb's ``nodes``."""
    from tests import pg_server

    psycopg = pytest.importorskip("psycopg")
    try:
        name, url = pg_server.create_database()
    except pg_server.ServerUnavailable as exc:
        pytest.skip(f"no PostgreSQL test server: {exc}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PG_SCHEMA)
        yield conn
    pg_server.drop_database(name)


def pg_load(conn: Any, rows: list[dict[str, Any]]) -> None:
    conn.execute("TRUNCATE filter_rows RESTART IDENTITY")
    with conn.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO filter_rows ({', '.join(COLUMNS)}, props) VALUES "
            f"({', '.join(['%s'] * len(COLUMNS))}, %s)",
            [[row.get(name) for name in COLUMNS] + [json.dumps(row["props"], ensure_ascii=False)]
             for row in map(pg_storable, rows)])


def pg_stored(conn: Any) -> dict[int, dict[str, object]]:
    out: dict[int, dict[str, object]] = {}
    rows = conn.execute(f"SELECT rid, {', '.join(COLUMNS)}, props::text FROM filter_rows")
    for rid, *values in rows:
        node: dict[str, object] = dict(zip(COLUMNS, values[:-1], strict=True))
        node["props"] = json.loads(values[-1])
        out[rid] = node
    return out


def pg_rowids(conn: Any, expr: object) -> set[int]:
    from loomdb.storage.postgres.filters import POSTGRES

    sql, params = to_sql(parse_filter(expr), POSTGRES)
    return {r for (r,) in conn.execute(f"SELECT rid FROM filter_rows n WHERE {sql}", params)}


def pg_ids(conn: Any, expr: object) -> set[str]:
    """Ids the filter selects on PostgreSQL; fails unless it agrees with ``matches``."""
    ast, stored_rows = parse_filter(expr), pg_stored(conn)
    sql_side = pg_rowids(conn, expr)
    assert sql_side == {r for r, node in stored_rows.items() if py_matches(ast, node)}, expr
    return {str(stored_rows[r]["id"]) for r in sql_side}


@pytest.mark.parametrize("expr", _cases(test_operators, test_strings_and_numbers_never_mix,
                                        test_bools_are_not_ints_in_props, test_null_and_missing,
                                        test_contains, test_nesting))
def test_postgres_agrees_on_the_examples(pg: Any, expr: object) -> None:
    pg_load(pg, ROWS)
    pg_ids(pg, expr)
    pg_ids(pg, {"$not": expr} if expr else {"$or": []})


@pytest.mark.parametrize(
    "value",
    ["'; DROP TABLE nodes; --", "\0", "a\0b", "ab\0", "😀", '" OR 1=1 --', "%", "\\", "$.a"],
)
def test_postgres_hostile_and_nul_values_are_just_values(pg: Any, value: str) -> None:
    pg_load(pg, ROWS)
    for op in ("$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin", "$contains"):
        arg = [value, 1] if op in ("$in", "$nin") else value
        for field in ("text", "props.quote", "props.tags", "props.lang"):
            pg_ids(pg, {field: {op: arg}})
    assert pg_ids(pg, {"text": "'; DROP TABLE nodes; --"}) == {"h1"}
    assert pg_ids(pg, {"text": {"$gte": "Hello\0"}}) == {"d1"}  # 'Hello world' > 'Hello\0'


def test_postgres_numbers_compare_exactly(pg: Any) -> None:
    big = 2**63 - 1
    pg_load(pg, [{"id": "f", "confidence": 2.0**63, "props": {"n": 2.0**63}},
                 {"id": "i", "access_count": big, "props": {"n": big}},
                 {"id": "h", "props": {"n": 2**64 + 1, "x": 0.1}},
                 {"id": "z", "confidence": -0.0, "props": {"n": -0.0}}])
    assert pg_ids(pg, {"confidence": big}) == set()  # 2**63 - 1 is no float
    assert pg_ids(pg, {"confidence": {"$gt": big}}) == {"f"}
    assert pg_ids(pg, {"props.n": {"$lt": 2.0**63}}) == {"i", "z"}
    assert pg_ids(pg, {"props.n": float(2**64)}) == {"h"}  # beyond 64 bits reads as a float
    assert pg_ids(pg, {"props.x": 0.1}) == {"h"}
    assert pg_ids(pg, {"access_count": {"$in": [big, 2.0**63]}}) == {"i"}
    assert pg_ids(pg, {"confidence": 0, "props.n": 0}) == {"z"}


def test_postgres_huge_in_lists(pg: Any) -> None:
    pg_load(pg, ROWS)
    values: list[object] = [f"v{i}" for i in range(MAX_LIST_ITEMS - 2)] + ["en", 5]
    assert pg_ids(pg, {"props.lang": {"$in": values}}) == {"c1"}
    assert pg_ids(pg, {"props.n": {"$nin": values}}) == ALL - {"c1", "d1"}
    deep = {"$or": [{"props.n": {"$in": [i, str(i)]}} for i in range(MAX_CONDITIONS - 1)]}
    assert pg_ids(pg, deep) == {"c1", "d1", "s1"}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=FILTERS, rows=st.lists(ROW, max_size=8))
def test_postgres_sql_and_python_agree(pg: Any, expr: dict[str, object],
                                       rows: list[dict[str, Any]]) -> None:
    pg_load(pg, rows)
    selected = pg_rowids(pg, expr)
    ast = parse_filter(expr)
    stored_rows = pg_stored(pg)
    assert selected == {r for r, node in stored_rows.items() if py_matches(ast, node)}
    assert pg_rowids(pg, {"$not": expr}) == set(stored_rows) - selected
