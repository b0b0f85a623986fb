"""The job-queue part of the Backend contract (the weaver's durable queue), on every backend."""

from __future__ import annotations

import pytest

from loomdb.model import Node
from loomdb.storage.base import Backend, JobSpec

T = "default"


def spec(node: str, task: str = "embed", **payload: object) -> JobSpec:
    return JobSpec(task, node, dict(payload) or None)


def test_enqueue_claim_complete(backend: Backend) -> None:
    backend.enqueue_jobs(T, [spec("a"), spec("b"), spec("a", "entities")])
    claimed = backend.claim_jobs(None, 10, lease=30, now=100.0)
    assert [(j.task, j.node_id) for j in claimed] == [("embed", "a"), ("embed", "b"),
                                                       ("entities", "a")]
    assert all(j.status == "running" and j.attempts == 1 and j.lease_until == 130.0
               for j in claimed)
    assert backend.claim_jobs(None, 10, lease=30, now=101.0) == []  # leased
    assert backend.complete_jobs([j.id for j in claimed[:2]], now=102.0) == 2
    counts = backend.job_counts()
    assert (counts["queued"], counts["running"], counts["done"]) == (0, 1, 2)
    assert counts["by_task"]["embed"]["done"] == 2 and counts["last_done"] == 102.0


def test_enqueue_dedupes_queued_jobs_and_keeps_the_newest_payload(backend: Backend) -> None:
    backend.enqueue_jobs(T, [spec("a", v=1)])
    backend.enqueue_jobs(T, [spec("a", v=2)])
    jobs = backend.list_jobs(T)
    assert len(jobs) == 1 and jobs[0].payload == {"v": 2}


def test_a_running_job_does_not_absorb_a_new_one(backend: Backend) -> None:
    backend.enqueue_jobs(T, [spec("a")])
    running = backend.claim_jobs(None, 1, lease=30, now=1.0)
    backend.enqueue_jobs(T, [spec("a")])  # the node changed while its job runs
    assert [j.status for j in backend.list_jobs(T)] == ["running", "queued"]
    backend.complete_jobs([running[0].id], now=2.0)
    assert len(backend.claim_jobs(None, 5, lease=30, now=3.0)) == 1


def test_claim_filters_by_task_and_run_after(backend: Backend) -> None:
    backend.enqueue_jobs(T, [spec("a", "embed"), spec("a", "summarize")])
    backend.enqueue_jobs(T, [spec("b", "embed")], run_after=50.0)
    assert [j.node_id for j in backend.claim_jobs(["embed"], 10, 300, now=10.0)] == ["a"]
    assert [j.node_id for j in backend.claim_jobs(["embed"], 10, 300, now=60.0)] == ["b"]
    assert [j.task for j in backend.claim_jobs(None, 10, 300, now=60.0)] == ["summarize"]


def test_an_expired_lease_is_claimed_again(backend: Backend) -> None:
    backend.enqueue_jobs(T, [spec("a")])
    first = backend.claim_jobs(None, 1, lease=10, now=0.0)[0]
    again = backend.claim_jobs(None, 1, lease=10, now=11.0)  # the first worker died
    assert [j.id for j in again] == [first.id] and again[0].attempts == 2


def test_retry_and_permanent_failure(backend: Backend) -> None:
    backend.enqueue_jobs(T, [spec("a")])
    job = backend.claim_jobs(None, 1, 10, now=0.0)[0]
    backend.fail_job(job.id, "model timed out", retry_at=5.0, now=1.0)
    assert backend.claim_jobs(None, 1, 10, now=2.0) == []
    job = backend.claim_jobs(None, 1, 10, now=5.0)[0]
    assert job.attempts == 2 and job.error == "model timed out"
    backend.fail_job(job.id, "gave up", retry_at=None, now=6.0)
    failed = backend.list_jobs(T, node_id="a", status="failed")
    assert [j.error for j in failed] == ["gave up"]
    assert backend.job_counts()["failed"] == 1
    assert backend.claim_jobs(None, 1, 10, now=100.0) == []
    backend.enqueue_jobs(T, [spec("a")])  # enqueued again: the failure is superseded
    assert [j.status for j in backend.list_jobs(T, node_id="a")] == ["queued"]


def test_a_retry_is_superseded_by_a_newer_job(backend: Backend) -> None:
    backend.enqueue_jobs(T, [spec("a", v=1)])
    job = backend.claim_jobs(None, 1, 10, now=0.0)[0]
    backend.enqueue_jobs(T, [spec("a", v=2)])
    backend.fail_job(job.id, "boom", retry_at=1.0, now=0.5)
    assert [j.payload for j in backend.list_jobs(T)] == [{"v": 2}]


def test_jobs_commit_and_roll_back_with_the_write(backend: Backend) -> None:
    with pytest.raises(RuntimeError), backend.transaction():
        backend.put_nodes(T, [Node("a")], "error")
        backend.enqueue_jobs(T, [spec("a")])
        raise RuntimeError("abort")
    assert backend.list_jobs(T) == [] and backend.get_nodes(T, ["a"]) == {}
    with backend.transaction():
        backend.put_nodes(T, [Node("a")], "error")
        backend.enqueue_jobs(T, [spec("a")])
    assert len(backend.list_jobs(T)) == 1


def test_jobs_are_listed_per_tenant(backend: Backend) -> None:
    backend.enqueue_jobs("t1", [spec("a")])
    backend.enqueue_jobs("t2", [spec("a")])
    assert [j.tenant for j in backend.list_jobs("t1")] == ["t1"]
    assert len(backend.list_jobs(None)) == 2
    assert {j.tenant for j in backend.claim_jobs(None, 10, 10, now=1.0)} == {"t1", "t2"}
