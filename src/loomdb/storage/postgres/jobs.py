"""The weaver's durable job queue on PostgreSQL. Jobs live in the store's database, so a write
and the jobs it enqueues commit in one transaction; workers claim with ``FOR UPDATE SKIP
LOCKED``, so concurrent workers (in any process) never take the same job or wait on each
other."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from ..base import Job, JobCounts, JobQueue, JobSpec, count_jobs
from .connection import ALL_TENANTS, Conn
from .core import Core

__all__ = ["PostgresJobQueue"]

JOB_COLUMNS = ("id, tenant, task, node_id, payload::text, status, attempts, run_after, "
               "lease_until, error, created, updated")


def _job(row: Sequence[Any]) -> Job:
    return Job(id=row[0], tenant=row[1], task=row[2], node_id=row[3],
               payload=json.loads(row[4]), status=row[5], attempts=row[6], run_after=row[7],
               lease_until=row[8], error=row[9], created=row[10], updated=row[11])


class PostgresJobQueue(Core, JobQueue):
    """Mixed into ``PostgresBackend``; implements the ``JobQueue`` part of the protocol."""

    def enqueue_jobs(self, tenant: str, jobs: Sequence[JobSpec], run_after: float = 0.0) -> int:
        if not jobs:
            return 0
        now = time.time()
        rows = [(tenant, j.task, j.node_id, json.dumps(j.payload or {}), run_after, now, now)
                for j in jobs]

        def write(conn: Conn) -> None:
            with conn.cursor() as cursor:
                cursor.executemany(
                    "DELETE FROM jobs WHERE tenant = %s AND task = %s AND node_id = %s "
                    "AND status = 'failed'", [row[:3] for row in rows])
                cursor.executemany(
                    "INSERT INTO jobs (tenant, task, node_id, payload, run_after, created, "
                    "updated) VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (tenant, task, node_id) "
                    "WHERE status = 'queued' DO UPDATE SET payload = excluded.payload, "
                    "run_after = excluded.run_after, updated = excluded.updated", rows)

        self._db.run(write, tenant)
        return len(jobs)

    def claim_jobs(
        self, tasks: Sequence[str] | None, limit: int, lease: float, now: float
    ) -> list[Job]:
        task_filter = "" if tasks is None else "AND task = ANY(%s::text[])"
        params: list[Any] = [now + lease, now, now, now]
        if tasks is not None:
            params.append(list(tasks))

        def write(conn: Conn) -> list[Job]:
            rows = conn.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = %s, "
                "updated = %s WHERE id IN (SELECT id FROM jobs WHERE ((status = 'queued' AND "
                "run_after <= %s) OR (status = 'running' AND lease_until <= %s)) "
                f"{task_filter} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
                f"RETURNING {JOB_COLUMNS}", [*params, limit]).fetchall()
            return sorted((_job(row) for row in rows), key=lambda job: job.id)

        return self._db.run(write, ALL_TENANTS)

    def complete_jobs(self, ids: Sequence[int], now: float) -> int:
        if not ids:
            return 0

        def write(conn: Conn) -> int:
            done = conn.execute("DELETE FROM jobs WHERE id = ANY(%s::int8[]) RETURNING task",
                                ([int(i) for i in ids],)).fetchall()
            per_task: dict[str, int] = {}
            for (task,) in done:
                per_task[task] = per_task.get(task, 0) + 1
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO job_totals (task, done, last_done) VALUES (%s, %s, %s) "
                    "ON CONFLICT (task) DO UPDATE SET done = job_totals.done + excluded.done, "
                    "last_done = excluded.last_done",
                    [(task, count, now) for task, count in sorted(per_task.items())])
            return len(done)

        return self._db.run(write, ALL_TENANTS)

    def fail_job(self, job_id: int, error: str, retry_at: float | None, now: float) -> None:
        def write(conn: Conn) -> None:
            if retry_at is None:
                conn.execute("UPDATE jobs SET status = 'failed', lease_until = NULL, "
                             "error = %s, updated = %s WHERE id = %s", (error, now, job_id))
                return
            # a newer queued job for the same node supersedes this retry
            conn.execute(
                "DELETE FROM jobs j WHERE j.id = %s AND EXISTS (SELECT 1 FROM jobs q WHERE "
                "q.status = 'queued' AND (q.tenant, q.task, q.node_id) = (j.tenant, j.task, "
                "j.node_id))", (job_id,))
            conn.execute("UPDATE jobs SET status = 'queued', lease_until = NULL, error = %s, "
                         "run_after = %s, updated = %s WHERE id = %s",
                         (error, retry_at, now, job_id))

        self._db.run(write, ALL_TENANTS)

    def list_jobs(
        self, tenant: str | None, node_id: str | None = None, status: str | None = None,
        limit: int = 100,
    ) -> list[Job]:
        clauses, params = [], []
        for column, value in (("tenant", tenant), ("node_id", node_id), ("status", status)):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.query(f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY id LIMIT %s",
                              [*params, limit], tenant=tenant)
        return [_job(row) for row in rows]

    def job_counts(self, tenant: str | None = None) -> JobCounts:
        where, params = ("", []) if tenant is None else ("WHERE tenant = %s", [tenant])
        return count_jobs(
            self._db.query(f"SELECT task, status, count(*) FROM jobs {where} "
                           "GROUP BY task, status", params,
                           tenant=ALL_TENANTS if tenant is None else tenant),
            self._db.query("SELECT task, done, last_done FROM job_totals", tenant=ALL_TENANTS))
