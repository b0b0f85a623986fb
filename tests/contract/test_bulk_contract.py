"""The whole-store part of the Backend contract (tenants, keyset scans, tool metadata, space
removal), run against every backend."""

from __future__ import annotations

import numpy as np
import pytest

from loomdb.errors import NotFound
from loomdb.model import Edge, Node, VectorSpace
from loomdb.storage.base import Backend


def _ids(pages: list[list[tuple[int, Node]]]) -> list[str]:
    return [node.id for page in pages for _, node in page]


def test_tenants_are_those_holding_nodes_sorted(backend: Backend) -> None:
    assert backend.tenants() == []
    for tenant in ("zeta", "alpha", "default"):
        backend.put_nodes(tenant, [Node("a")], "error")
    backend.delete_nodes("zeta", ["a"])
    assert backend.tenants() == ["alpha", "default"]


def test_scan_nodes_pages_in_insertion_order_without_repeats(backend: Backend) -> None:
    backend.put_nodes("default", [Node(f"n{i}", text=f"t{i}") for i in range(7)], "error")
    backend.put_nodes("other", [Node("x")], "error")
    backend.delete_nodes("default", ["n3"])
    backend.put_nodes("default", [Node("n1", text="replaced")], "replace")  # keeps its place
    pages, after = [], 0
    while page := backend.scan_nodes("default", after, 2):
        assert [p for p, _ in page] == sorted(p for p, _ in page) and page[0][0] > after
        pages.append(page)
        after = page[-1][0]
    assert _ids(pages) == ["n0", "n1", "n2", "n4", "n5", "n6"]
    assert pages[0][1][1].text == "replaced" and pages[0][0][1].tenant == "default"
    assert backend.scan_nodes("default", after, 10) == []


def test_scan_edges_pages_in_insertion_order(backend: Backend) -> None:
    backend.put_nodes("default", [Node(i) for i in "abcd"], "error")
    keys = [("a", "b", "x"), ("c", "d", "y"), ("b", "a", "x"), ("a", "b", "y")]
    backend.put_edges("default", [Edge(s, d, t, props={"k": t}) for s, d, t in keys], "error")
    first = backend.scan_edges("default", 0, 3)
    rest = backend.scan_edges("default", first[-1][0], 3)
    edges = [e for _, e in first + rest]
    assert [(e.src, e.dst, e.type) for e in edges] == keys
    assert edges[1].props == {"k": "y"} and backend.scan_edges("other", 0, 10) == []


def test_meta_set_replace_remove_and_roll_back(backend: Backend) -> None:
    assert backend.get_meta("migration") is None
    backend.set_meta("migration", '{"a": 1}')
    backend.set_meta("migration", "two")
    assert backend.get_meta("migration") == "two"
    with pytest.raises(RuntimeError), backend.transaction():
        backend.set_meta("migration", None)
        assert backend.get_meta("migration") is None
        raise RuntimeError
    assert backend.get_meta("migration") == "two"
    backend.set_meta("store_id", "mine")  # a tool's key never touches the backend's own
    assert backend.store_id() != "mine"
    backend.set_meta("migration", None)
    assert backend.get_meta("migration") is None


def test_delete_space_drops_its_vectors_in_every_tenant(backend: Backend) -> None:
    backend.create_space(VectorSpace("s", 2))
    backend.create_space(VectorSpace("kept", 2))
    for tenant in ("default", "t2"):
        backend.put_nodes(tenant, [Node("a"), Node("b")], "error")
        backend.put_vectors(tenant, "s", ["a", "b"], np.eye(2, dtype=np.float32))
        backend.put_vectors(tenant, "kept", ["a"], np.ones((1, 2), np.float32))
    assert backend.delete_space("s") == 4
    assert [s.name for s in backend.list_spaces()] == ["kept"]
    with pytest.raises(NotFound):
        backend.get_space("s")
    with pytest.raises(NotFound):
        backend.delete_space("s")
    assert backend.vector_tenants("s") == [] and backend.stats("t2")["vectors"] == {"kept": 1}
    backend.create_space(VectorSpace("s", 3))  # the name is free again, with other settings
    backend.put_vectors("default", "s", ["a"], np.ones((1, 3), np.float32))
    assert backend.get_vectors("default", "s", ["a"])["a"].shape == (3,)
