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
]


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
