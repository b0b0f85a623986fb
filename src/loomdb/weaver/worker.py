"""The weaver: a background worker that runs the durable enrichment jobs.

Writes enqueue jobs in their own transaction (``Backend.enqueue_jobs``); the worker claims
them in batches with a lease, runs each task (``weaver.tasks``), and completes the jobs in the
transaction that writes their results. A crash loses nothing: unclaimed jobs wait in the
store, and a dead worker's claimed jobs are claimed again when their lease runs out.

A failed batch is retried job by job, so one bad node cannot fail its neighbours; each failed
attempt is queued again after an exponential backoff (with jitter), and after
``max_attempts`` the job is marked failed and kept, with its error, for ``jobs(node)``.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from ..config import EnrichmentSettings
from ..context import Context
from ..errors import LoomError
from ..ml.bridge import MLProvider
from ..storage.base import Job
from .activity import PRIORITY, ActivityLevel, policy
from .tasks import TASKS

__all__ = ["Weaver", "WeaverStatus"]

LEASE = 300.0          # seconds a claimed batch may run before another worker may take it
MAX_ATTEMPTS = 5
BACKOFF_BASE = 2.0     # seconds before the first retry; doubles per attempt
BACKOFF_CAP = 600.0
IDLE_WAIT = 1.0        # seconds between polls when the queue is empty


@dataclass(frozen=True)
class WeaverStatus:
    """What the weaver is doing: ``weaver_status()``'s answer."""

    running: bool
    active_workers: int
    activity: str
    queued: int
    running_jobs: int
    done: int
    failed: int
    by_task: dict[str, dict[str, int]]
    latency: dict[str, dict[str, float]]
    last_event: str | None
    last_event_at: float | None

    @property
    def queue_size(self) -> int:
        return self.queued + self.running_jobs


class Weaver:
    """Runs enrichment jobs for every tenant of one store, in a background thread or inline.

    Args:
        root: the store's context (each job runs in its tenant's context derived from it);
            its provider is loaded on first need, so a store that never enriches never
            loads a model.
    """

    def __init__(self, root: Context) -> None:
        self._root = root
        self.activity: ActivityLevel = "normal"
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._run_lock = threading.Lock()  # one batch at a time per process
        # by (tenant, task) and by tenant (None: the store's own, shown to every tenant)
        self._latency: dict[tuple[str, str], deque[float]] = defaultdict(
            lambda: deque(maxlen=2000))
        self._last_event: dict[str | None, tuple[float, str]] = {}

    @property
    def provider(self) -> MLProvider:
        return self._root.provider

    @property
    def settings(self) -> EnrichmentSettings:
        return self._root.enrichment

    # -- control ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background worker (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="loomdb-weaver", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the batch in progress; queued jobs stay durable for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def notify(self) -> None:
        """New jobs were committed: wake the worker."""
        self._wake.set()

    def set_activity(self, level: ActivityLevel) -> None:
        policy(level)
        self.activity = level
        self._event(f"activity level set to {level}")
        self._wake.set()

    # -- running ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except LoomError as exc:  # the store itself failed: report, back off, go on
                self._event(f"worker error: {exc.code}: {exc.message}")
                worked = 0
            pause = policy(self.activity).pause if worked else IDLE_WAIT
            self._wake.wait(pause)
            self._wake.clear()

    def run_once(self, now: float | None = None, tasks: Sequence[str] | None = None) -> int:
        """Claim and run one batch of the current level's tasks (or of ``tasks``); returns
        jobs handled."""
        with self._run_lock:
            level = policy(self.activity)
            allowed = level.tasks if tasks is None else tuple(tasks)
            now = time.time() if now is None else now
            jobs: list[Job] = []
            for task in (t for t in PRIORITY if t in allowed):
                if len(jobs) >= level.batch:
                    break
                jobs += self._root.backend.claim_jobs([task], level.batch - len(jobs),
                                                      LEASE, now)
            groups: dict[tuple[str, str], list[Job]] = defaultdict(list)
            for job in jobs:
                groups[(job.tenant, job.task)].append(job)
            for (tenant, task), batch in groups.items():
                self._run_batch(tenant, task, batch)
            return len(jobs)

    def active_tasks(self) -> tuple[str, ...]:
        return policy(self.activity).tasks

    def pending(self) -> int:
        """Jobs of the current level's tasks still queued or running."""
        by_task = self._root.backend.job_counts()["by_task"]
        return sum(by_task[t]["queued"] + by_task[t]["running"]
                   for t in self.active_tasks() if t in by_task)

    def run_until_idle(self, timeout: float = 300.0, tasks: Sequence[str] | None = None) -> int:
        """Run batches in the calling thread until no job of the current level (or of
        ``tasks``) is ready; returns jobs handled. For scripts, tests and ``loomdb weaver``."""
        handled, deadline = 0, time.monotonic() + timeout
        while time.monotonic() < deadline:
            count = self.run_once(tasks=tasks)
            if count == 0:
                return handled
            handled += count
        return handled

    def _run_batch(self, tenant: str, task: str, jobs: list[Job]) -> None:
        try:
            self._attempt(tenant, task, jobs)
        except Exception as exc:
            if len(jobs) == 1:
                self._failed(jobs[0], exc)
                return
            for job in jobs:  # isolate the bad node: the rest succeed alone
                try:
                    self._attempt(tenant, task, [job])
                except Exception as single:
                    self._failed(job, single)

    def _attempt(self, tenant: str, task: str, jobs: list[Job]) -> None:
        ctx = self._root.for_tenant(tenant)
        apply = TASKS[task](ctx, jobs) if task in TASKS else _unknown(task)
        now = time.time()
        with ctx.backend.transaction():
            follow_up = apply()
            if follow_up:
                ctx.backend.enqueue_jobs(tenant, follow_up)
            ctx.backend.complete_jobs([job.id for job in jobs], now)
        for job in jobs:
            self._latency[(tenant, task)].append(now - job.created)
        self._event(f"{task}: {len(jobs)} job(s) done for tenant {tenant}", tenant)

    def _failed(self, job: Job, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        now = time.time()
        retry_at = None
        if job.attempts < MAX_ATTEMPTS:
            delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (job.attempts - 1))
            retry_at = now + delay * random.uniform(0.8, 1.2)
        self._root.backend.fail_job(job.id, error, retry_at, now)
        state = "will retry" if retry_at else "failed for good"
        self._event(f"{job.task} {job.node_id!r} {state} (attempt {job.attempts}): {error}",
                    job.tenant)

    def _event(self, text: str, tenant: str | None = None) -> None:
        """Remember the last event of ``tenant`` (``None``: of the store, like a change of
        activity level or a worker error)."""
        self._last_event[tenant] = (time.time(), text)

    # -- status ----------------------------------------------------------------------------

    def status(self, tenant: str | None = None) -> WeaverStatus:
        """The store's status, or ``tenant``'s: its queued, running and failed jobs, its jobs'
        latency, its last event (or the store's own, if later). ``done`` counts the store's
        done jobs either way: they are totalled per task, not per tenant."""
        counts = self._root.backend.job_counts(tenant)
        running = self._thread is not None and self._thread.is_alive()
        events = [e for t, e in self._last_event.items() if tenant is None or t in (None, tenant)]
        event = max(events, default=None)
        latency: dict[str, list[float]] = defaultdict(list)
        for (owner, task), samples in list(self._latency.items()):
            if tenant is None or owner == tenant:
                latency[task] += samples
        return WeaverStatus(
            running=running, active_workers=int(running), activity=self.activity,
            queued=counts["queued"], running_jobs=counts["running"], done=counts["done"],
            failed=counts["failed"], by_task=counts["by_task"],
            latency={task: _percentiles(samples) for task, samples in latency.items()},
            last_event=event[1] if event else None, last_event_at=event[0] if event else None)


def _unknown(task: str) -> NoReturn:
    raise LoomError(f"no such enrichment task {task!r}")


def _percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50/p95 (seconds) of the time from enqueue to done."""
    if len(samples) < 2:
        value = samples[0] if samples else 0.0
        return {"p50": value, "p95": value, "count": float(len(samples))}
    cuts = statistics.quantiles(samples, n=20)
    return {"p50": statistics.median(samples), "p95": cuts[18], "count": float(len(samples))}
