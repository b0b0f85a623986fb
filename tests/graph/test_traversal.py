"""Graph traversals, checked against networkx on random graphs."""

from __future__ import annotations

import random

import networkx as nx
import pytest

import loomdb
from loomdb import InvalidInput, NotFound


def random_graph(db: loomdb.Database, n: int, m: int, seed: int) -> nx.DiGraph:
    rng = random.Random(seed)
    graph = nx.DiGraph()
    db.add_nodes([{"id": f"v{i}", "kind": "even" if i % 2 == 0 else "odd"} for i in range(n)])
    graph.add_nodes_from(f"v{i}" for i in range(n))
    edges = {}
    while len(edges) < m:
        a, b = rng.randrange(n), rng.randrange(n)
        if a != b:
            edges[(f"v{a}", f"v{b}")] = rng.choice([0.5, 1.0, 2.0, 4.0])
    db.add_edges([{"src": a, "dst": b, "type": "link", "weight": w}
                  for (a, b), w in edges.items()])
    graph.add_weighted_edges_from((a, b, w) for (a, b), w in edges.items())
    return graph


@pytest.mark.parametrize("seed", range(4))
def test_shortest_paths_match_networkx(db: loomdb.Database, seed: int) -> None:
    graph = random_graph(db, 60, 150, seed)
    rng = random.Random(seed)
    for _ in range(25):
        a, b = f"v{rng.randrange(60)}", f"v{rng.randrange(60)}"
        path = db.shortest_path(a, b, max_depth=20)
        weighted = db.shortest_path(a, b, weighted=True, max_depth=20)
        if not nx.has_path(graph, a, b):
            assert path is None and weighted is None
            continue
        assert path is not None and weighted is not None
        assert len(path) == nx.shortest_path_length(graph, a, b)
        assert weighted.cost == pytest.approx(
            nx.shortest_path_length(graph, a, b, weight="weight"))
        for p in (path, weighted):  # a real walk: each edge joins consecutive nodes
            assert p.nodes[0].id == a and p.nodes[-1].id == b
            for i, edge in enumerate(p.edges):
                assert (edge.src, edge.dst) == (p.nodes[i].id, p.nodes[i + 1].id)


def test_undirected_and_reverse_paths(db: loomdb.Database) -> None:
    random_graph(db, 40, 80, 9)
    graph = nx.DiGraph((e.src, e.dst) for e in db.get_edges(limit=1000))
    undirected = graph.to_undirected()
    for a, b in [("v1", "v30"), ("v5", "v17"), ("v2", "v39")]:
        both = db.shortest_path(a, b, direction="both", max_depth=20)
        assert both is not None and len(both) == nx.shortest_path_length(undirected, a, b)
        reverse = db.shortest_path(a, b, direction="in", max_depth=20)
        if nx.has_path(graph, b, a):
            assert reverse is not None and len(reverse) == nx.shortest_path_length(graph, b, a)


def test_max_depth_bounds_the_search(db: loomdb.Database) -> None:
    db.add_nodes([{"id": f"c{i}"} for i in range(6)])
    db.add_edges([{"src": f"c{i}", "dst": f"c{i + 1}"} for i in range(5)])
    assert db.shortest_path("c0", "c5", max_depth=4) is None
    assert len(db.shortest_path("c0", "c5", max_depth=5) or []) == 5
    same = db.shortest_path("c0", "c0")
    assert same is not None and len(same) == 0 and [n.id for n in same.nodes] == ["c0"]
    with pytest.raises(NotFound):
        db.shortest_path("c0", "nope")


def test_expand_matches_networkx_k_hop(db: loomdb.Database) -> None:
    graph = random_graph(db, 80, 200, 3)
    for seed in ["v0", "v7", "v33"]:
        sub = db.expand(seed, hops=2, limit=1000)
        expected = nx.single_source_shortest_path_length(graph, seed, cutoff=2)
        assert sub.depth == expected
        assert {n.id for n in sub.nodes} == set(expected)
        assert all(sub.depth[e.dst] == sub.depth[e.src] + 1 for e in sub.edges)


def test_expand_limit_types_and_filter(db: loomdb.Database) -> None:
    db.add_nodes([{"id": "hub"}] + [{"id": f"s{i}", "kind": "x" if i % 2 else "y"}
                                    for i in range(50)])
    db.add_edges([{"src": "hub", "dst": f"s{i}", "type": "a" if i < 40 else "b",
                   "weight": float(i)} for i in range(50)])
    limited = db.expand("hub", hops=1, limit=5)
    assert len(limited.nodes) == 5  # the seed and the four strongest edges' targets
    assert {n.id for n in limited.nodes} == {"hub", "s49", "s48", "s47", "s46"}
    assert len(db.expand("hub", hops=1, types=["b"]).nodes) == 11
    filtered = db.expand("hub", hops=1, where={"kind": "x"})
    assert {n.kind for n in filtered.nodes if n.id != "hub"} == {"x"}
    with pytest.raises(NotFound):
        db.expand(["hub", "ghost"])


def test_neighbors(db: loomdb.Database) -> None:
    db.add_nodes([{"id": i, "kind": "k" + i} for i in "abcd"])
    db.add_edges([{"src": "a", "dst": "b", "type": "t1", "weight": 1},
                  {"src": "a", "dst": "c", "type": "t2", "weight": 3},
                  {"src": "d", "dst": "a", "type": "t1", "weight": 2}])
    assert [n.id for n, _ in db.neighbors("a")] == ["c", "b"]
    assert [n.id for n, _ in db.neighbors("a", direction="in")] == ["d"]
    assert [n.id for n, _ in db.neighbors("a", direction="both")] == ["c", "d", "b"]
    assert [n.id for n, _ in db.neighbors("a", types=["t1"])] == ["b"]
    assert [n.id for n, _ in db.neighbors("a", where={"kind": "kb"})] == ["b"]
    assert [e.type for _, e in db.neighbors("a", limit=1)] == ["t2"]
    with pytest.raises(NotFound):
        db.neighbors("zz")
    with pytest.raises(InvalidInput):
        db.neighbors("a", direction="sideways")  # type: ignore[arg-type]


def test_negative_weights_are_refused_for_weighted_paths(db: loomdb.Database) -> None:
    db.add_nodes([{"id": "a"}, {"id": "b"}])
    db.add_edge("a", "b", weight=-1)
    with pytest.raises(InvalidInput, match="negative"):
        db.shortest_path("a", "b", weighted=True)


@pytest.mark.parametrize("seed", range(3))
def test_weighted_undirected_paths_match_networkx(db: loomdb.Database, seed: int) -> None:
    directed = random_graph(db, 50, 120, seed)
    undirected = nx.Graph()
    undirected.add_nodes_from(directed)
    for a, b, w in directed.edges(data="weight"):  # antiparallel edges: the cheaper one
        if not undirected.has_edge(a, b) or undirected[a][b]["weight"] > w:
            undirected.add_edge(a, b, weight=w)
    rng = random.Random(seed)
    for _ in range(25):
        a, b = f"v{rng.randrange(50)}", f"v{rng.randrange(50)}"
        path = db.shortest_path(a, b, weighted=True, direction="both", max_depth=50)
        if not nx.has_path(undirected, a, b):
            assert path is None
            continue
        assert path is not None
        assert path.cost == pytest.approx(
            nx.shortest_path_length(undirected, a, b, weight="weight"))
