"""The tenant matrix: for every operation that reads content or statistics, tenant A's writes
leave tenant B's answer unchanged, on every backend.

Two numbers are the store's by nature and left out of the comparison: ``stats()``'s ``seq``
and ``log_entries`` (the store's change log: one sequence for every tenant, which the vector
index and the result cache are stamped with) and ``weaver_status().done`` (done jobs are
totalled per task, not per tenant).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import loomdb
from loomdb.storage.base import JobSpec

SPACE = "v"


def _fill(db: loomdb.Database, prefix: str, n: int, word: str) -> None:
    rng = np.random.default_rng(len(prefix) + n)
    db.add_nodes([{"id": f"{prefix}{i}", "kind": "note", "text": f"{word} sample {i}"}
                  for i in range(n)], vectors=rng.normal(size=(n, 4)), space=SPACE)
    db.backend.enqueue_jobs(db.tenant_name, [JobSpec("summarize", f"{prefix}{i}")
                                              for i in range(min(n, 5))])


def _answers(db: loomdb.Database) -> dict[str, Any]:
    """Tenant ``db``'s answer to every operation that reads content or statistics."""
    db.text_search("radium", k=5)  # a query of its own, for query_stats
    status = db.weaver_status()
    stats = {k: v for k, v in db.stats().items() if k not in ("seq", "log_entries")}
    return {
        "text_search": [(h.id, h.score) for h in db.text_search("radium polonium", k=10)],
        "vector_search": [(h.id, h.score) for h in
                          db.vector_search([1.0, 0.5, 0.0, -0.5], k=5, space=SPACE)],
        "query": [h.id for h in db.query(lexical="radium polonium", k=5, cache=False)],
        "stats": stats,
        "weaver_status": (status.queued, status.running_jobs, status.failed, status.last_event),
        "query_stats": {s: v["count"] for s, v in db.query_stats()["queries"].items()},
        "jobs": [(j.node_id, j.task, j.status) for j in db.jobs()],
        "list_nodes": [n.id for n in db.list_nodes(limit=100)],
        "count": db.count(),
    }


def test_one_tenants_writes_never_change_anothers_answers(db: loomdb.Database) -> None:
    db.create_space(SPACE, 4)
    a, b = db.tenant("a"), db.tenant("b")
    _fill(b, "b", 3, "radium polonium")
    before = _answers(b)
    assert all(before[op] for op in ("text_search", "vector_search", "query", "jobs"))
    _fill(a, "a", 1200, "radium")
    for _ in range(3):
        a.text_search("radium", k=3)
        a.query(lexical="radium", k=3, cache=False)
    after = _answers(b)
    changed = sorted(op for op in before if before[op] != after[op]
                     and op != "query_stats")
    assert changed == []
    assert after["query_stats"] == {s: 2 * c for s, c in before["query_stats"].items()}


def test_each_tenant_sees_only_its_own_queue_and_query_latency(db: loomdb.Database) -> None:
    a, b = db.tenant("a"), db.tenant("b")
    a.add_nodes([{"id": f"n{i}", "text": "x"} for i in range(3)])
    b.add_nodes([{"id": "n0", "text": "y"}])
    db.backend.enqueue_jobs("a", [JobSpec("summarize", f"n{i}") for i in range(3)])
    db.backend.enqueue_jobs("b", [JobSpec("summarize", "n0")])
    assert (a.weaver_status().queued, b.weaver_status().queued) == (3, 1)
    assert db.weaver.status().queued == 4  # the store's own view
    a.query(lexical="x", k=1, cache=False)
    a.query(lexical="x", k=1, cache=False)
    b.query(lexical="y", k=1, cache=False)
    counts = [sum(v["count"] for v in t.query_stats()["queries"].values()) for t in (a, b)]
    assert counts == [2, 1]
