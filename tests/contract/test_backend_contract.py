"""The Backend contract (loomdb.storage.base), run against every backend.

A new backend joins by adding itself to ``BACKENDS`` in conftest.py; nothing here changes.
"""

from __future__ import annotations

import numpy as np
import pytest

from loomdb.errors import Conflict, CorruptStore, NotFound
from loomdb.filters import parse_filter
from loomdb.model import Edge, Node, VectorSpace
from loomdb.storage.base import Backend

T = "default"


def nodes(*ids: str, **fields: object) -> list[Node]:
    return [Node(id=i, text=f"text of {i}", **fields) for i in ids]  # type: ignore[arg-type]


def test_put_and_get_nodes(backend: Backend) -> None:
    backend.put_nodes(T, nodes("a", "b"), "error")
    got = backend.get_nodes(T, ["a", "b", "missing"])
    assert set(got) == {"a", "b"}
    assert got["a"].text == "text of a" and got["a"].tenant == T
    assert got["a"].created is not None and got["a"].updated is not None


def test_put_error_mode_is_atomic(backend: Backend) -> None:
    backend.put_nodes(T, nodes("a"), "error")
    with pytest.raises(Conflict):
        backend.put_nodes(T, nodes("new", "a"), "error")
    assert set(backend.get_nodes(T, ["new", "a"])) == {"a"}


def test_replace_keeps_created_edges_and_vectors(backend: Backend) -> None:
    backend.create_space(VectorSpace("s", 2))
    backend.put_nodes(T, nodes("a", "b"), "error")
    backend.put_edges(T, [Edge("a", "b")], "error")
    backend.put_vectors(T, "s", ["a"], np.array([[1, 0]], np.float32))
    created = backend.get_nodes(T, ["a"])["a"].created
    backend.put_nodes(T, [Node("a", kind="entity", text="new", created=1.0)], "replace")
    a = backend.get_nodes(T, ["a"])["a"]
    assert (a.kind, a.text, a.created) == ("entity", "new", created)
    assert len(backend.get_edges(T, src="a")) == 1
    assert "a" in backend.get_vectors(T, "s", ["a"])


def test_ignore_keeps_existing(backend: Backend) -> None:
    backend.put_nodes(T, nodes("a"), "error")
    backend.put_nodes(T, [Node("a", text="other")], "ignore")
    assert backend.get_nodes(T, ["a"])["a"].text == "text of a"


def test_update_node(backend: Backend) -> None:
    backend.put_nodes(T, nodes("a"), "error")
    updated = backend.update_node(T, "a", {"text": "changed", "props": {"k": [1, 2]}})
    assert updated.text == "changed" and updated.props == {"k": [1, 2]}
    with pytest.raises(NotFound):
        backend.update_node(T, "missing", {"text": "x"})


def test_delete_cascades_edges_and_vectors(backend: Backend) -> None:
    backend.create_space(VectorSpace("s", 2))
    backend.put_nodes(T, nodes("a", "b", "c"), "error")
    backend.put_edges(T, [Edge("a", "b"), Edge("c", "a"), Edge("b", "c")], "error")
    backend.put_vectors(T, "s", ["a", "b"], np.eye(2, dtype=np.float32))
    assert backend.delete_nodes(T, ["a", "missing"]) == 1
    assert [(e.src, e.dst) for e in backend.get_edges(T)] == [("b", "c")]
    assert set(backend.get_vectors(T, "s", ["a", "b"])) == {"b"}
    assert backend.check_integrity() == []


def test_list_and_count_with_filter(backend: Backend) -> None:
    backend.put_nodes(T, [Node(f"n{i}", kind="chunk" if i % 2 else "doc", props={"i": i})
                          for i in range(10)], "error")
    where = parse_filter({"kind": "chunk", "props.i": {"$gte": 5}})
    assert [n.id for n in backend.list_nodes(T, where, 100, 0)] == ["n5", "n7", "n9"]
    assert backend.count_nodes(T, where) == 3
    assert [n.id for n in backend.list_nodes(T, None, 2, 3)] == ["n3", "n4"]


def test_edges_need_both_endpoints(backend: Backend) -> None:
    backend.put_nodes(T, nodes("a"), "error")
    with pytest.raises(NotFound, match="missing"):
        backend.put_edges(T, [Edge("a", "missing")], "error")
    assert backend.get_edges(T) == []


def test_edge_identity_and_conflicts(backend: Backend) -> None:
    backend.put_nodes(T, nodes("a", "b"), "error")
    backend.put_edges(T, [Edge("a", "b", "x", weight=1), Edge("a", "b", "y")], "error")
    with pytest.raises(Conflict):
        backend.put_edges(T, [Edge("a", "b", "x")], "error")
    backend.put_edges(T, [Edge("a", "b", "x", weight=5)], "replace")
    assert [e.weight for e in backend.get_edges(T, types=["x"])] == [5]
    assert [e.type for e in backend.get_edges(T, limit=1, offset=1)] == ["y"]
    assert backend.delete_edges(T, [("a", "b", "x"), ("a", "b", "zz")]) == 1


def test_adjacent_orders_by_weight_and_respects_direction(backend: Backend) -> None:
    backend.put_nodes(T, nodes("a", "b", "c", "d"), "error")
    backend.put_edges(T, [Edge("a", "b", weight=1), Edge("a", "c", weight=3),
                          Edge("d", "a", weight=2)], "error")
    assert [e.dst for e in backend.adjacent(T, ["a"], None, "out", 10)] == ["c", "b"]
    assert [e.src for e in backend.adjacent(T, ["a"], None, "in", 10)] == ["d"]
    both = backend.adjacent(T, ["a"], None, "both", 10)
    assert [(e.src, e.dst) for e in both] == [("a", "c"), ("d", "a"), ("a", "b")]
    assert len(backend.adjacent(T, ["a"], None, "both", 1)) == 1
    assert backend.adjacent(T, ["a"], ["nope"], "out", 10) == []


def test_spaces(backend: Backend) -> None:
    space = VectorSpace("s", 3, model="m")
    assert backend.create_space(space) == space
    assert backend.create_space(space) == space  # idempotent
    with pytest.raises(Conflict):
        backend.create_space(VectorSpace("s", 4, model="m"))
    with pytest.raises(NotFound, match="no vector space 'zz'"):
        backend.get_space("zz")
    assert backend.list_spaces() == [space]


def test_replaced_vector_gets_new_label(backend: Backend) -> None:
    backend.create_space(VectorSpace("s", 2))
    backend.put_nodes(T, nodes("a"), "error")
    backend.put_vectors(T, "s", ["a"], np.array([[1, 0]], np.float32))
    first = backend.vector_labels(T, "s", None)
    backend.put_vectors(T, "s", ["a"], np.array([[0, 1]], np.float32))
    second = backend.vector_labels(T, "s", None)
    assert len(first) == len(second) == 1 and second[0] > first[0]
    labels, vectors = backend.vectors_by_label(T, "s", [int(first[0]), int(second[0])])
    assert labels.tolist() == second.tolist() and vectors.tolist() == [[0, 1]]
    assert set(backend.nodes_by_label(T, "s", [int(first[0]), int(second[0])])) == {
        int(second[0])}


def test_change_log_drives_the_index(backend: Backend) -> None:
    backend.create_space(VectorSpace("s", 2))
    backend.put_nodes(T, nodes("a", "b"), "error")
    start = backend.seq()
    backend.put_vectors(T, "s", ["a", "b"], np.eye(2, dtype=np.float32))
    backend.delete_nodes(T, ["a"])
    changes = backend.vector_changes(T, "s", start)
    assert [c.op for c in changes] == ["add", "add", "del"]
    assert [c.seq for c in changes] == sorted(c.seq for c in changes)
    assert backend.seq() > start


def test_log_is_never_purged_past_an_index_stamp(backend: Backend) -> None:
    backend.create_space(VectorSpace("s", 2))
    backend.put_nodes(T, nodes("a", "b"), "error")
    backend.put_vectors(T, "s", ["a"], np.array([[1, 0]], np.float32))
    stamp = backend.seq()
    backend.put_vectors(T, "s", ["b"], np.array([[0, 1]], np.float32))
    backend.purge_log()  # no stamp yet: nothing a future index needs may go
    assert len(backend.vector_changes(T, "s", 0)) == 2
    backend.record_index_stamp(T, "s", stamp)
    backend.purge_log()
    assert [c.op for c in backend.vector_changes(T, "s", stamp)] == ["add"]
    with pytest.raises(CorruptStore):
        backend.vector_changes(T, "s", 0)


def test_text_search_bm25(backend: Backend) -> None:
    backend.put_nodes(T, [Node("a", text="the quick brown fox"), Node("b", text="lazy dog"),
                          Node("c", text="fox fox fox hunting"), Node("d")], "error")
    found = backend.text_search(T, "fox", 10, None)
    assert [n.id for n, _ in found] == ["c", "a"]
    assert found[0][1] > found[1][1] > 0
    assert backend.text_search(T, '"unbalanced AND (', 10, None) == []
    assert backend.text_search(T, "", 10, None) == []
    backend.update_node(T, "b", {"text": "a fox now"})
    assert "b" in {n.id for n, _ in backend.text_search(T, "fox", 10, None)}
    backend.delete_nodes(T, ["c"])
    assert "c" not in {n.id for n, _ in backend.text_search(T, "fox", 10, None)}


def test_tenants_are_isolated(backend: Backend) -> None:
    backend.create_space(VectorSpace("s", 2))
    for tenant in ("t1", "t2"):
        backend.put_nodes(tenant, [Node("a", text=f"fox of {tenant}"), Node("b")], "error")
        backend.put_edges(tenant, [Edge("a", "b")], "error")
        backend.put_vectors(tenant, "s", ["a"], np.array([[1, 0]], np.float32))
    backend.delete_nodes("t1", ["a"])
    assert set(backend.get_nodes("t2", ["a", "b"])) == {"a", "b"}
    assert len(backend.get_edges("t2")) == 1 and backend.get_edges("t1") == []
    assert [n.tenant for n, _ in backend.text_search("t2", "fox", 10, None)] == ["t2"]
    assert backend.text_search("t1", "fox", 10, None) == []
    t2_labels = backend.vector_labels("t2", "s", None)
    assert backend.nodes_by_label("t1", "s", t2_labels.tolist()) == {}
    assert backend.vectors_by_label("t1", "s", t2_labels.tolist())[0].tolist() == []
    with pytest.raises(NotFound):
        backend.put_edges("t1", [Edge("b", "a")], "error")  # a exists only in t2 now


def test_transaction_rolls_back_everything(backend: Backend) -> None:
    backend.put_nodes(T, nodes("a"), "error")
    with pytest.raises(RuntimeError), backend.transaction():
        backend.put_nodes(T, nodes("b"), "error")
        backend.delete_nodes(T, ["a"])
        raise RuntimeError("abort")
    assert set(backend.get_nodes(T, ["a", "b"])) == {"a"}


def test_nested_transaction_is_a_savepoint(backend: Backend) -> None:
    with backend.transaction():
        backend.put_nodes(T, nodes("a"), "error")
        with pytest.raises(Conflict):
            backend.put_nodes(T, nodes("b", "a"), "error")  # this call alone rolls back
        assert backend.in_transaction()
    assert set(backend.get_nodes(T, ["a", "b"])) == {"a"}
    assert not backend.in_transaction()


def test_stats(backend: Backend) -> None:
    backend.create_space(VectorSpace("s", 2))
    backend.put_nodes(T, [*nodes("a", "b"), Node("c", kind="chunk")], "error")
    backend.put_edges(T, [Edge("a", "b", "next")], "error")
    backend.put_vectors(T, "s", ["a"], np.array([[1, 0]], np.float32))
    stats = backend.stats(T)
    assert stats["nodes"] == {"concept": 2, "chunk": 1}
    assert stats["edges"] == {"next": 1} and stats["vectors"] == {"s": 1}
