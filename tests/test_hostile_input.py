"""Hostile input: each case is a clear LoomError with a stable code, and the store is intact."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import loomdb
from loomdb import LoomError


def nested(depth: int, leaf: Any = 1) -> Any:
    """``{"a": {"a": ... leaf}}`` ``depth`` objects deep, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def nots(depth: int) -> dict[str, Any]:
    """A filter of ``depth`` nested ``$not``s."""
    value: dict[str, Any] = {"kind": "x"}
    for _ in range(depth):
        value = {"$not": value}
    return value


def deep_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


V = [1, 0, 0, 0]
NASTY = ["'; DROP TABLE nodes; --", "\x00", "a\x00b", '" OR 1=1 --', "$.x", "props.'x'",
         "🦊", "\u202e", "--", "[0]", "*", "NEAR(", "x" * 10_000]


@pytest.fixture
def store(db: loomdb.Database) -> loomdb.Database:
    db.create_space("text", 4, model="m")
    db.add_nodes([{"id": f"n{i}", "text": f"fox {i}", "props": {"g": i % 3}}
                  for i in range(20)], vectors=np.eye(20, 4) + 0.01)
    db.add_edges([{"src": f"n{i}", "dst": f"n{i + 1}"} for i in range(19)])
    return db


def intact(db: loomdb.Database) -> None:
    assert db.count() == 20 and len(db.get_edges()) == 19
    assert len(db.vector_search([1, 0, 0, 0], k=20)) == 20
    assert db.backend.check_integrity() == [] and db.check() == []


CASES: list[tuple[str, Callable[[loomdb.Database], Any], str]] = [
    ("dimension", lambda db: db.vector_search([1, 0], k=1), "dimension_mismatch"),
    ("dimension batch", lambda db: db.set_vectors(["n1"], np.ones((1, 5))),
     "dimension_mismatch"),
    ("nan", lambda db: db.set_vector("n1", [np.nan] * 4), "invalid_vector"),
    ("inf query", lambda db: db.vector_search([np.inf] * 4), "invalid_vector"),
    ("text vector", lambda db: db.vector_search("abcd"), "invalid_vector"),
    ("model", lambda db: db.set_vector("n1", [1, 0, 0, 0], model="other"), "model_mismatch"),
    ("vector count", lambda db: db.set_vectors(["n1", "n2"], np.ones((1, 4))),
     "invalid_input"),
    ("unknown id get", lambda db: db.get_node("ghost"), "not_found"),
    ("unknown id update", lambda db: db.update_node("ghost", text="x"), "not_found"),
    ("unknown vector", lambda db: db.set_vector("ghost", [1, 0, 0, 0]), "not_found"),
    ("unknown edge end", lambda db: db.add_edge("n1", "ghost"), "not_found"),
    ("unknown neighbours", lambda db: db.neighbors("ghost"), "not_found"),
    ("unknown path end", lambda db: db.shortest_path("n1", "ghost"), "not_found"),
    ("unknown space", lambda db: db.vector_search([1, 0, 0, 0], space="nope"), "not_found"),
    ("huge k", lambda db: db.vector_search([1, 0, 0, 0], k=10**9), "invalid_input"),
    ("zero k", lambda db: db.text_search("fox", k=0), "invalid_input"),
    ("huge limit", lambda db: db.list_nodes(limit=10**12), "invalid_input"),
    ("negative offset", lambda db: db.list_nodes(offset=-1), "invalid_input"),
    ("bool limit", lambda db: db.list_nodes(limit=True), "invalid_input"),
    ("huge hops", lambda db: db.expand("n1", hops=10**6), "invalid_input"),
    ("huge depth", lambda db: db.shortest_path("n1", "n2", max_depth=10**6), "invalid_input"),
    ("bad direction", lambda db: db.neighbors("n1", direction="up"), "invalid_input"),
    ("empty id", lambda db: db.add_node(""), "invalid_input"),
    ("nul id", lambda db: db.add_node("a\x00b"), "invalid_input"),
    ("long id", lambda db: db.add_node("x" * 10_000), "invalid_input"),
    ("non-str id", lambda db: db.add_node(5), "invalid_input"),
    ("props not dict", lambda db: db.add_node("z", props=[1]), "invalid_input"),
    ("props nan", lambda db: db.add_node("z", props={"x": float("nan")}), "invalid_input"),
    ("props nul", lambda db: db.add_node("z", props={"x": "a\x00"}), "invalid_input"),
    ("props object", lambda db: db.add_node("z", props={"x": object()}), "invalid_input"),
    ("unknown field", lambda db: db.add_nodes([{"id": "z", "colour": 1}]), "invalid_input"),
    ("update field", lambda db: db.update_node("n1", tenant="other"), "invalid_input"),
    ("edge weight", lambda db: db.add_edge("n1", "n2", "w", weight=float("nan")),
     "invalid_input"),
    ("duplicate", lambda db: db.add_node("n1"), "conflict"),
    ("bad tenant", lambda db: db.tenant("../../etc"), "invalid_input"),
    ("bad space name", lambda db: db.create_space("../x", 4), "invalid_input"),
    ("bad dim", lambda db: db.create_space("s2", 0), "invalid_input"),
    ("space conflict", lambda db: db.create_space("text", 8), "conflict"),
    ("bad metric", lambda db: db.create_space("s2", 4, metric="hamming"), "invalid_input"),
    ("on_conflict", lambda db: db.add_nodes([], on_conflict="merge"), "invalid_input"),
    ("query type", lambda db: db.text_search(None), "invalid_input"),
    ("lone surrogate", lambda db: db.add_node("s", text="\ud800"), "invalid_input"),
    ("surrogate id", lambda db: db.add_node("\udc00"), "invalid_input"),
    ("huge magnitude", lambda db: db.set_vector("n1", [1e30, 1, 1, 1]), "invalid_vector"),
    ("edge offset", lambda db: db.get_edges(offset=-5), "invalid_input"),
    # numbers the backends cannot hold: 64-bit integers, finite floats (was OverflowError)
    ("offset 2**63", lambda db: db.list_nodes(offset=2**63), "invalid_input"),
    ("edge offset 10**20", lambda db: db.get_edges(offset=10**20), "invalid_input"),
    ("limit 10**5000", lambda db: db.list_nodes(limit=10**5000), "invalid_input"),
    ("created 10**400", lambda db: db.add_node("z", created=10**400), "invalid_input"),
    ("created inf", lambda db: db.add_node("z", created=float("inf")), "invalid_input"),
    ("access_count 2**64", lambda db: db.add_node("z", access_count=2**64), "invalid_input"),
    ("access_count float", lambda db: db.add_node("z", access_count=1.5), "invalid_input"),
    ("edge weight 10**400", lambda db: db.add_edge("n1", "n2", "w", weight=10**400),
     "invalid_input"),
    # nesting: bounded without recursion (was RecursionError)
    ("props 100k deep", lambda db: db.add_node("z", props=nested(100_000)), "invalid_input"),
    ("props 65 deep", lambda db: db.add_node("z", props=nested(65)), "invalid_input"),
    ("props deep list", lambda db: db.add_node("z", props={"a": deep_list(100_000)}),
     "invalid_input"),
    ("edge props deep", lambda db: db.add_edge("n1", "n2", "w", props=nested(100_000)),
     "invalid_input"),
    ("query $not 1000 deep", lambda db: db.query(where=nots(1000)), "invalid_filter"),
    ("query matching deep", lambda db: db.query(matching=nots(1000)), "invalid_filter"),
    ("query $in deep list", lambda db: db.query(where={"props.a": {"$in": deep_list(5000)}}),
     "invalid_filter"),
    ("query user deep list", lambda db: db.query(vector=V, user=deep_list(5000)),
     "invalid_input"),
    # types the API refused nowhere (was TypeError / AttributeError / ValueError)
    ("open 123", lambda db: loomdb.open(123), "invalid_input"),
    ("open unknown URL", lambda db: loomdb.open("redis://localhost/0"), "invalid_input"),
    ("policy exclude int", lambda db: db.set_user_policy("u", exclude={"source": 5}),
     "invalid_input"),
    ("policy exclude str", lambda db: db.set_user_policy("u", exclude={"source": "abc"}),
     "invalid_input"),
    ("policy boosts int", lambda db: db.set_user_policy("u", boosts={"kind": 5}),
     "invalid_input"),
    ("policy half-life str", lambda db: db.set_user_policy("u", recency_half_life="x"),
     "invalid_input"),
    ("weights not a mapping", lambda db: db.query(vector=V, weights=5), "invalid_input"),
    ("near int", lambda db: db.query(vector=V, near=5), "invalid_input"),
    ("edge_types int", lambda db: db.query(vector=V, near="n1", edge_types=5),
     "invalid_input"),
    ("ragged query vector", lambda db: db.query(vector=[[1, 2], [3]]), "invalid_vector"),
    ("semantic k str", lambda db: db.find().similar_to(V, k="x").run(), "invalid_input"),
    ("threshold str", lambda db: db.query(vector=V, threshold="x"), "invalid_input"),
    # accepted but wrong before: stored, or answered with nothing
    ("confidence str", lambda db: db.add_node("z", confidence="high"), "invalid_input"),
    ("confidence bool", lambda db: db.add_node("z", confidence=True), "invalid_input"),
    ("strength nan", lambda db: db.add_node("z", strength=float("nan")), "invalid_input"),
    ("source int", lambda db: db.add_node("z", source=5), "invalid_input"),
    ("edge confidence str", lambda db: db.add_edge("n1", "n2", "w", confidence="high"),
     "invalid_input"),
    ("edge created nan", lambda db: db.add_edge("n1", "n2", "w", created=float("nan")),
     "invalid_input"),
    ("update kind empty", lambda db: db.update_node("n1", kind=""), "invalid_input"),
    ("update created str", lambda db: db.update_node("n1", created="yesterday"),
     "invalid_input"),
    ("update created None", lambda db: db.update_node("n1", created=None), "invalid_input"),
    ("update confidence nan", lambda db: db.update_node("n1", confidence=float("nan")),
     "invalid_input"),
    ("update access_count 2**64", lambda db: db.update_node("n1", access_count=2**64),
     "invalid_input"),
    ("update props deep", lambda db: db.update_node("n1", props=nested(100_000)),
     "invalid_input"),
    ("update text int", lambda db: db.update_node("n1", text=5), "invalid_input"),
    ("threshold nan", lambda db: db.query(vector=V, threshold=float("nan")), "invalid_input"),
]


def test_refused_updates_leave_the_node_as_it_was(store: loomdb.Database) -> None:
    before = store.get_node("n1")
    for changes in ({"kind": ""}, {"created": "yesterday"}, {"strength": float("nan")},
                    {"text": "ok", "confidence": "high"}):
        with pytest.raises(loomdb.InvalidInput):
            store.update_node("n1", **changes)
    assert store.get_node("n1") == before


def test_numbers_are_stored_as_the_backends_keep_them(store: loomdb.Database) -> None:
    """Valid input as before: an int confidence reads back as a float, numpy numbers are
    accepted, props nested to the limit round-trip, big finite times are kept."""
    node = store.add_node("z", confidence=1, strength=np.float32(0.5),
                          access_count=np.int64(3), created=10**20, props=nested(63))
    assert (node.confidence, node.strength, node.access_count) == (1.0, 0.5, 3)
    assert node.created == 1e20 and node.props == nested(63)
    assert store.update_node("z", access_count=2**63 - 1, confidence=0).access_count == 2**63 - 1
    assert store.list_nodes(offset=2**63 - 1) == []
    edge = store.add_edge("n1", "n3", "w", weight=2, confidence=np.float64(0.25))
    assert (edge.weight, edge.confidence) == (2.0, 0.25)


def test_a_literal_backslash_u0000_is_not_nul(store: loomdb.Database) -> None:
    store.add_node("path", props={"p": "C:\\u0000dir"})
    assert store.get_node("path").props == {"p": "C:\\u0000dir"}
    assert store.list_nodes({"props.p": "C:\\u0000dir"})[0].id == "path"


@pytest.mark.parametrize(("name", "call", "code"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(store: loomdb.Database, name: str,
                                    call: Callable[[loomdb.Database], Any], code: str) -> None:
    with pytest.raises(LoomError) as info:
        call(store)
    assert info.value.code == code, info.value
    assert len(str(info.value)) < 600
    intact(store)


@pytest.mark.parametrize("value", NASTY)
def test_hostile_strings_are_data_never_syntax(store: loomdb.Database, value: str) -> None:
    assert store.list_nodes({"text": value}) == []
    assert store.list_nodes({"props.g": {"$in": [value, 1]}}) != []
    assert store.vector_search([1, 0, 0, 0], where={"source": value}) == []
    store.text_search(value)  # FTS syntax in a query is searched as words
    if "\x00" not in value and len(value) <= 512:
        store.add_node(value, text=value, props={"v": value})
        assert store.get_node(value).props == {"v": value}
        assert store.list_nodes({"props.v": value})[0].id == value
        store.delete_node(value)
    intact(store)


@pytest.mark.parametrize("key", ["props.x'y", 'props.x"y', "props.a--b", "props.$x", "props.",
                                 "props.a\x00", "nodes; DROP", "tenant", "n.kind", "props.[0]"])
def test_hostile_filter_keys_are_refused(store: loomdb.Database, key: str) -> None:
    with pytest.raises(loomdb.InvalidFilter):
        store.list_nodes({key: 1})
    intact(store)


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=12))
def test_any_json_filter_is_answered_or_refused(value: Any) -> None:
    with loomdb.open(":memory:") as db:
        db.add_nodes([{"id": "a", "props": {"g": 1}}])
        with contextlib.suppress(loomdb.InvalidFilter):
            db.list_nodes(value if isinstance(value, dict) else {"props.g": value})
        assert db.count() == 1


def test_huge_batch_is_atomic(db: loomdb.Database) -> None:
    db.add_node("dup")
    batch = [{"id": f"x{i}", "text": "y" * 100} for i in range(20_000)] + [{"id": "dup"}]
    with pytest.raises(loomdb.Conflict):
        db.add_nodes(batch)
    assert db.count() == 1
