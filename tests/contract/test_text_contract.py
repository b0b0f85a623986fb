"""Full text on every backend: restricted scoring agrees with a restricted search, and very
common words neither dominate nor slow down a query."""

from __future__ import annotations

import pytest

from loomdb.filters import parse_filter
from loomdb.model import Node
from loomdb.storage.base import Backend

T = "default"
TEXTS = [
    "the river Seine flows through Paris",
    "the river Thames flows through London and the city",
    "mountains of the Alps near Geneva",
    "the quick brown fox jumps over the lazy dog",
    "Paris is the capital of France, on the Seine",
    "an über café in Zürich",
]


@pytest.fixture
def texts(backend: Backend) -> Backend:
    backend.put_nodes(T, [Node(f"t{i}", text=t) for i, t in enumerate(TEXTS)], "error")
    backend.put_nodes(T, [Node(f"x{i}", text=f"filler number {i} with the words") for i in
                          range(40)], "error")
    return backend


@pytest.mark.parametrize("query", ["Seine Paris", "the river", "cafe zurich", "fox dog"])
def test_text_scores_equal_the_restricted_search(texts: Backend, query: str) -> None:
    ids = ["t0", "t1", "t3", "t4", "t5", "x1"]
    where = parse_filter({"id": {"$in": ids}})
    searched = [(n.id, s) for n, s in texts.text_search(T, query, 10, where)]
    scored = texts.text_scores(T, query, ids, 10)
    assert [i for i, _ in scored] == [i for i, _ in searched]
    assert [s for _, s in scored] == pytest.approx([s for _, s in searched], rel=1e-6)


def test_a_word_in_most_documents_does_not_swamp_the_ranking(texts: Backend) -> None:
    hits = texts.text_search(T, "the Seine", 3, None)
    assert {n.id for n, _ in hits[:2]} == {"t0", "t4"}
    assert texts.text_scores(T, "the", ["t3", "x5"], 5)  # alone, a common word still counts


def test_pruning_never_leaves_a_query_without_its_only_matching_word(backend: Backend) -> None:
    backend.put_nodes(T, [Node(f"n{i}", text=f"the note {i} about the weather")
                          for i in range(1200)]
                      + [Node("seine", text="the river Seine in the rain")], "error")
    assert backend.text_search(T, "the Seine", 5, None)[0][0].id == "seine"
    assert len(backend.text_search(T, "the zebra", 5, None)) == 5  # "the" is all that matches
    assert len(backend.text_search(T, "zebra okapi", 5, None)) == 0


# -- tenant isolation: a tenant's scores and hits are its own, whatever another one holds ------

def _radium(backend: Backend, tenant: str) -> list[tuple[str, float]]:
    return [(n.id, s) for n, s in backend.text_search(tenant, "radium polonium", 10, None)]


def _b_texts(backend: Backend) -> None:
    backend.put_nodes("b", [Node("b1", text="radium sample"),
                            Node("b2", text="polonium sample")], "error")


def _a_texts(backend: Backend) -> None:
    backend.put_nodes("a", [Node(f"a{i}", text=f"radium note {i}") for i in range(1200)],
                      "error")


def test_another_tenants_documents_change_neither_scores_nor_hits(backend: Backend) -> None:
    _b_texts(backend)
    alone = _radium(backend, "b")
    _a_texts(backend)
    assert {i for i, _ in alone} == {"b1", "b2"}
    assert _radium(backend, "b") == alone  # byte for byte: same ids, same float scores
    assert backend.text_scores("b", "radium polonium", ["b1", "b2"], 5) == \
        [(i, s) for i, s in alone]


def test_a_tenant_is_scored_the_same_before_and_after_another_arrives(
        backend: Backend) -> None:
    _a_texts(backend)
    alone = _radium(backend, "a")
    _b_texts(backend)
    backend.put_nodes("b", [Node(f"p{i}", text="polonium radium") for i in range(50)], "error")
    assert _radium(backend, "a") == alone
    pruned = [n.id for n, _ in backend.text_search("a", "radium note 7", 3, None)]
    assert pruned[0] == "a7"  # "radium" and "note" are common in a, whatever b holds
