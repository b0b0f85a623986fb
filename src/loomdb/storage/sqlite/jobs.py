"""The weaver's durable job queue on SQLite, sharing the store's writer connection so that a
write and the jobs it enqueues commit in one transaction."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from ..base import Job, JobCounts, JobQueue, JobSpec, count_jobs
from .connection import Connection

__all__ = ["SqliteJobQueue"]

JOB_COLUMNS = ("id, tenant, task, node_id, payload, status, attempts, run_after, lease_until, "
               "error, created, updated")


def _job(row: Sequence[Any]) -> Job:
    return Job(id=row[0], tenant=row[1], task=row[2], node_id=row[3],
               payload=json.loads(row[4]), status=row[5], attempts=row[6], run_after=row[7],
               lease_until=row[8], error=row[9], created=row[10], updated=row[11])


class SqliteJobQueue(JobQueue):
    """Mixed into ``SqliteBackend``; implements the ``JobQueue`` part of the protocol."""

    _db: Connection

    def enqueue_jobs(self, tenant: str, jobs: Sequence[JobSpec], run_after: float = 0.0) -> int:
        if not jobs:
            return 0
        now = time.time()
        rows = [(tenant, j.task, j.node_id, json.dumps(j.payload or {}), run_after, now, now)
                for j in jobs]
        with self._db.transaction() as conn:
            conn.executemany(
                "DELETE FROM jobs WHERE tenant = ? AND task = ? AND node_id = ? "
                "AND status = 'failed'", [row[:3] for row in rows])
            conn.executemany(
                "INSERT INTO jobs (tenant, task, node_id, payload, run_after, created, updated) "
                "VALUES (?,?,?,?,?,?,?) ON CONFLICT (tenant, task, node_id) "
                "WHERE status = 'queued' DO UPDATE SET payload = excluded.payload, "
                "run_after = excluded.run_after, updated = excluded.updated", rows)
        return len(jobs)

    def release_dead_leases(self) -> int:
        """Queue again, at once, the jobs an earlier process left running: only the writer
        that holds the store's lock runs its jobs, so when it opens, whoever held those leases
        is gone (a crash would otherwise stall them for the whole lease). Their attempt counts
        stay, so a job that kills its process still fails for good in the end."""
        with self._db.transaction() as conn:
            conn.execute(  # a job queued again meanwhile for the same node supersedes it
                "DELETE FROM jobs WHERE status = 'running' AND EXISTS (SELECT 1 FROM jobs q "
                "WHERE q.status = 'queued' AND (q.tenant, q.task, q.node_id) = "
                "(jobs.tenant, jobs.task, jobs.node_id))")
            return conn.execute("UPDATE jobs SET status = 'queued', lease_until = NULL, "
                                "run_after = 0 WHERE status = 'running'").rowcount

    def claim_jobs(
        self, tasks: Sequence[str] | None, limit: int, lease: float, now: float
    ) -> list[Job]:
        task_filter = ""
        params: list[Any] = [now, now]
        if tasks is not None:
            task_filter = "AND task IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(list(tasks)))
        with self._db.transaction() as conn:
            rows = conn.execute(
                f"UPDATE jobs SET status = 'running', attempts = attempts + 1, "
                f"lease_until = ?, updated = ? WHERE id IN (SELECT id FROM jobs WHERE "
                f"((status = 'queued' AND run_after <= ?) OR (status = 'running' AND "
                f"lease_until <= ?)) {task_filter} ORDER BY id LIMIT ?) "
                f"RETURNING {JOB_COLUMNS}",
                [now + lease, now, *params, limit],
            ).fetchall()
        return sorted((_job(row) for row in rows), key=lambda job: job.id)

    def complete_jobs(self, ids: Sequence[int], now: float) -> int:
        if not ids:
            return 0
        with self._db.transaction() as conn:
            done = conn.execute(
                "DELETE FROM jobs WHERE id IN (SELECT value FROM json_each(?)) RETURNING task",
                (json.dumps(list(ids)),),
            ).fetchall()
            per_task: dict[str, int] = {}
            for (task,) in done:
                per_task[task] = per_task.get(task, 0) + 1
            conn.executemany(
                "INSERT INTO job_totals (task, done, last_done) VALUES (?, ?, ?) "
                "ON CONFLICT (task) DO UPDATE SET done = done + excluded.done, "
                "last_done = excluded.last_done",
                [(task, count, now) for task, count in per_task.items()])
        return len(done)

    def fail_job(self, job_id: int, error: str, retry_at: float | None, now: float) -> None:
        with self._db.transaction() as conn:
            if retry_at is None:
                conn.execute("UPDATE jobs SET status = 'failed', lease_until = NULL, error = ?, "
                             "updated = ? WHERE id = ?", (error, now, job_id))
                return
            # a newer queued job for the same node supersedes this retry
            conn.execute(
                "DELETE FROM jobs WHERE id = ? AND EXISTS (SELECT 1 FROM jobs q WHERE "
                "q.status = 'queued' AND (q.tenant, q.task, q.node_id) = "
                "(SELECT tenant, task, node_id FROM jobs WHERE id = ?))", (job_id, job_id))
            conn.execute("UPDATE jobs SET status = 'queued', lease_until = NULL, error = ?, "
                         "run_after = ?, updated = ? WHERE id = ?",
                         (error, retry_at, now, job_id))

    def list_jobs(
        self, tenant: str | None, node_id: str | None = None, status: str | None = None,
        limit: int = 100,
    ) -> list[Job]:
        clauses, params = [], []
        for column, value in (("tenant", tenant), ("node_id", node_id), ("status", status)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.query(f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY id LIMIT ?",
                              [*params, limit])
        return [_job(row) for row in rows]

    def job_counts(self, tenant: str | None = None) -> JobCounts:
        where, params = ("", []) if tenant is None else ("WHERE tenant = ?", [tenant])
        return count_jobs(
            self._db.query(f"SELECT task, status, count(*) FROM jobs {where} "
                           "GROUP BY task, status", params),
            self._db.query("SELECT task, done, last_done FROM job_totals"))
