"""Copying a store batch by batch, each batch in one destination transaction together with
the checkpoint that records it.

Rows are read with keyset scans (``scan_nodes``, ``scan_edges``, and vectors by label), so
every batch costs the same however far the copy has gone, and go in in the source's order:
nodes and edges keep their insertion order (which listings and tie-breaks follow) and vectors
their relative label order. Each tenant's nodes go first, then its edges (both ends exist by
then), then its vectors, space by space, in the space's storage dtype (exact values).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import groupby
from typing import TypedDict

import numpy as np

from ...model import JSONObject, VectorSpace
from ...storage.base import COUNT_KINDS, Backend, JobSpec, Matrix
from .checkpoint import Checkpoint, write_checkpoint

__all__ = ["Copier", "PendingJob", "Progress", "Survey", "SurveyDict", "copy_jobs",
           "pending_jobs", "survey", "vector_batches"]

Progress = Callable[[str, int, int], None]  # (stage, done, total)
KINDS = COUNT_KINDS
PendingJob = tuple[str, str, str, JSONObject, float]  # (tenant, task, node, payload, run_after)


class SurveyDict(TypedDict, total=False):
    """``Survey.to_dict()``; a report's survey is empty until the source is surveyed."""

    tenants: dict[str, dict[str, dict[str, int]]]
    totals: dict[str, int]
    spaces: list[dict[str, str | int]]  # each VectorSpace's fields
    jobs: dict[str, int]


@dataclass
class Survey:
    """What a store holds: per tenant, nodes by kind, edges by type and vectors by space; its
    vector spaces; its jobs by status."""

    tenants: dict[str, dict[str, dict[str, int]]]
    spaces: list[VectorSpace]
    jobs: dict[str, int]

    @property
    def rows(self) -> int:
        """Nodes, edges and vectors in all."""
        return sum(sum(c.values()) for t in self.tenants.values() for c in t.values())

    def totals(self) -> dict[str, int]:
        return {kind: sum(sum(t[kind].values()) for t in self.tenants.values())
                for kind in KINDS}

    def to_dict(self) -> SurveyDict:
        return {"tenants": self.tenants, "totals": self.totals(),
                "spaces": [s.__dict__ for s in self.spaces], "jobs": self.jobs}


def survey(backend: Backend) -> Survey:
    tenants: dict[str, dict[str, dict[str, int]]] = {}
    for tenant in backend.tenants():
        stats = backend.stats(tenant)
        tenants[tenant] = {kind: dict(stats[kind]) for kind in KINDS}
    counts = backend.job_counts()
    return Survey(tenants, backend.list_spaces(),
                  {status: counts[status] for status in ("queued", "running", "failed")})


class Copier:
    """Copies what ``source`` holds into ``dest`` from where ``checkpoint`` says it stopped."""

    def __init__(self, source: Backend, dest: Backend, checkpoint: Checkpoint, batch: int,
                 progress: Progress | None, total: int) -> None:
        self.source, self.dest, self.checkpoint = source, dest, checkpoint
        self.batch, self.progress, self.total = batch, progress, total
        self.done = sum(checkpoint.copied.values())

    def run(self, tenants: list[str], spaces: list[VectorSpace]) -> None:
        for space in spaces:
            self.dest.create_space(space)  # again on a resume: a no-op for an identical space
        self._report()
        for tenant in tenants:
            self.nodes(tenant)
            self.edges(tenant)
            for space in spaces:
                self.vectors(tenant, space)

    def nodes(self, tenant: str) -> None:
        while page := self.source.scan_nodes(tenant, self.checkpoint.position(tenant, "nodes"),
                                             self.batch):
            batch = [node for _, node in page]
            self._commit(partial(self.dest.put_nodes, tenant, batch, "error"),
                         tenant, "nodes", page[-1][0], "nodes", len(batch))

    def edges(self, tenant: str) -> None:
        while page := self.source.scan_edges(tenant, self.checkpoint.position(tenant, "edges"),
                                             self.batch):
            batch = [edge for _, edge in page]
            self._commit(partial(self.dest.put_edges, tenant, batch, "error"),
                         tenant, "edges", page[-1][0], "edges", len(batch))

    def vectors(self, tenant: str, space: VectorSpace) -> None:
        key = f"vectors:{space.name}"
        start = self.checkpoint.position(tenant, key)
        for last, found in vector_batches(self.source, tenant, space.name, self.batch, start):
            ids = list(found)

            def write(ids: list[str] = ids, found: dict[str, Matrix] = found) -> None:
                if ids:
                    self.dest.put_vectors(tenant, space.name, ids,
                                          np.stack([found[i] for i in ids]))

            self._commit(write, tenant, key, last, "vectors", len(ids))

    def _commit(self, write: Callable[[], None], tenant: str, what: str, position: int,
                kind: str, rows: int) -> None:
        with self.dest.transaction():
            write()
            self.checkpoint.advance(tenant, what, position, kind, rows)
            write_checkpoint(self.dest, self.checkpoint)
        self.done += rows
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress("copy", self.done, self.total)


def vector_batches(
    backend: Backend, tenant: str, space: str, batch: int, after: int = 0
) -> Iterator[tuple[int, dict[str, Matrix]]]:
    """The tenant's vectors in ``space`` with a label above ``after``, in label order, as
    ``(last label of the batch, {node id: vector in the space's storage dtype})``."""
    labels = backend.vector_labels(tenant, space, None)
    labels = labels[labels > after]
    for start in range(0, len(labels), batch):
        part = [int(x) for x in labels[start:start + batch]]
        owners = backend.nodes_by_label(tenant, space, part)
        ids = [owners[x].id for x in part if x in owners]
        found = backend.get_vectors(tenant, space, ids)  # exact, in the stored dtype
        yield part[-1], {i: found[i] for i in ids if i in found}


def pending_jobs(backend: Backend) -> list[PendingJob]:
    """The store's running, then queued jobs as (tenant, task, node, payload, run_after)."""
    counts = backend.job_counts()
    jobs = [job for status in ("running", "queued")
            for job in backend.list_jobs(None, status=status, limit=max(1, counts[status]))]
    return [(j.tenant, j.task, j.node_id, j.payload, j.run_after) for j in jobs]


def copy_jobs(source: Backend, dest: Backend) -> int:
    """Queue in ``dest`` the jobs waiting in ``source``: queued ones, and running ones (their
    worker belongs to the source) queued afresh. Failed jobs stay behind: they record the
    source weaver's give-ups, and enqueueing the node again supersedes them anyway. Attempts
    and creation times start over. Returns how many jobs were queued."""
    queued = 0
    # runs of jobs sharing tenant and run_after, in the source's order (the order they run in)
    for (tenant, run_after), run in groupby(pending_jobs(source), key=lambda j: (j[0], j[4])):
        queued += dest.enqueue_jobs(tenant, [JobSpec(j[1], j[2], j[3]) for j in run], run_after)
    return queued
