"""Validating a migration: the destination must hold what the source holds and answer
queries as it does. Each check is a ``Check`` of the report:

- ``spaces``: the same vector spaces (a legacy directory keeps name, dimension and model).
- ``counts``: per tenant, nodes by kind, edges by type and vectors by space.
- ``nodes``, ``edges``: every row's checksum (``row_checksum``: all fields), compared by id
  and by (src, dst, type); a key on one side only is missing or extra, so equal edge sets
  are part of ``edges``.
- ``vectors``: every vector's cosine to the source's >= 0.9999, and its values equal to the
  source's in the destination's storage dtype.
- ``vector_search``, ``text_search``, ``neighbors``: answers for a sample of nodes per
  tenant (a reservoir sample, seeded, so a re-validation asks the same). Vector search is
  exact, top 10, compared by id allowing score ties (1e-5). Text search on the same engine
  compares the top 10 the same way; across SQLite and PostgreSQL, whose rankings differ in
  kind (BM25, ``ts_rank_cd``) and whose tokenizers differ at the edges (SQLite folds accents;
  PostgreSQL keeps URLs and e-mail addresses whole), it compares the *sets* of nodes that
  match a plain ASCII word (up to 1,000) and passes when their Jaccard overlap averages at
  least 0.9. Neighbours (both directions, 50) must be the same list.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Hashable, Iterator
from typing import TypeVar

from ...database import Database
from ...errors import InvalidInput
from ...model import Edge, Node, VectorSpace
from ...storage.base import COUNT_KINDS, Matrix
from .checks import (
    SCORE_TIE,
    Check,
    Diff,
    compare_streams,
    differing_fields,
    row_checksum,
    same_ranking,
    vector_problem,
)
from .copying import pending_jobs, vector_batches

__all__ = ["check_jobs", "validate"]

TOP_K = 10
TEXT_SET_K = 1_000
MIN_TEXT_OVERLAP = 0.9
NEIGHBORS = 50
SEED = 20_240_601
Tick = Callable[[int], None]
EdgeKey = tuple[str, str, str]  # (src, dst, type): what identifies an edge
K = TypeVar("K", bound=Hashable)
Row = TypeVar("Row", Node, Edge)


class Validation:
    """The checks over one source and destination (see the module docstring)."""

    def __init__(self, source: Database, dest: Database, *, legacy_dest: bool, sample: int,
                 batch: int, tick: Tick) -> None:
        self.source, self.dest = source, dest
        self.legacy_dest, self.sample, self.batch, self.tick = legacy_dest, sample, batch, tick
        self.skip = frozenset({"updated"}) if legacy_dest else frozenset()
        self.same_engine = type(source.backend) is type(dest.backend)
        self.checks = {name: Check(name) for name in (
            "spaces", "counts", "nodes", "edges", "vectors", "vector_search", "text_search",
            "neighbors")}
        ranked = f"top {TOP_K} ids, scores tied within {SCORE_TIE:g} in any order"
        self.checks["vector_search"].detail["compare"] = f"exact search, {ranked}"
        if self.same_engine:
            self.checks["text_search"].detail["compare"] = ranked
        self.checks["neighbors"].detail["compare"] = f"both directions, first {NEIGHBORS}"
        self.overlaps: list[float] = []  # across engines: each text query's match-set overlap

    def run(self) -> list[Check]:
        self.spaces()
        tenants = sorted(set(self.source.backend.tenants()) | set(self.dest.backend.tenants()))
        for tenant in tenants:
            self.counts(tenant)
            sample = self.nodes(tenant)
            self.edges(tenant)
            for space in self.source.spaces():
                self.vectors(tenant, space.name)
            self.queries(tenant, sample)
        self.text_overlap()
        return list(self.checks.values())

    # -- the tables ------------------------------------------------------------------------

    def spaces(self) -> None:
        check = self.checks["spaces"]
        shown = ("name", "dim", "model") if self.legacy_dest else None
        mine, theirs = ([_space(s, shown) for s in db.spaces()] for db in (self.source, self.dest))
        check.compared = len(mine)
        if mine != theirs:
            check.fail(f"source {mine}, destination {theirs}")

    def counts(self, tenant: str) -> None:
        check = self.checks["counts"]
        for kind in COUNT_KINDS:
            mine, theirs = (db.backend.stats(tenant)[kind] for db in (self.source, self.dest))
            check.compared += 1
            if mine != theirs:
                check.fail(f"{tenant}: {kind} {mine} in the source, {theirs} in the destination")

    def nodes(self, tenant: str) -> list[str]:
        """Compare the tenant's nodes; returns the sample of ids the queries use."""
        reservoir: list[str] = []
        chooser = random.Random(f"{SEED}:{tenant}")

        def sampled(rows: Iterator[tuple[str, Node]]) -> Iterator[tuple[str, Node]]:
            for seen, (key, node) in enumerate(rows):
                slot = seen if seen < self.sample else chooser.randrange(seen + 1)
                if slot < self.sample:
                    reservoir[slot:slot + 1] = [key]
                yield key, node

        diff = compare_streams(sampled(self._nodes(tenant, self.tick)), self._nodes(tenant),
                               self._row_differ)
        self._record(self.checks["nodes"], tenant, diff)
        return reservoir

    def edges(self, tenant: str) -> None:
        diff = compare_streams(self._edges(tenant, self.tick), self._edges(tenant),
                               self._row_differ)
        self._record(self.checks["edges"], tenant, diff)

    def vectors(self, tenant: str, space: str) -> None:
        if space not in {s.name for s in self.dest.spaces()}:
            return  # the spaces check reports it
        mine = self._vectors(self.source, tenant, space, self.tick)
        diff = compare_streams(mine, self._vectors(self.dest, tenant, space), vector_problem)
        self._record(self.checks["vectors"], f"{tenant}/{space}", diff)

    def _nodes(self, tenant: str, tick: Tick | None = None) -> Iterator[tuple[str, Node]]:
        """The source's nodes (with ``tick``) or the destination's, keyed by id."""
        db = self.source if tick is not None else self.dest
        for node in self._scan(db.backend.scan_nodes, tenant, tick):
            yield node.id, node

    def _edges(self, tenant: str, tick: Tick | None = None) -> Iterator[tuple[EdgeKey, Edge]]:
        """The source's edges (with ``tick``) or the destination's, keyed by their ends and
        type."""
        db = self.source if tick is not None else self.dest
        for edge in self._scan(db.backend.scan_edges, tenant, tick):
            yield (edge.src, edge.dst, edge.type), edge

    def _scan(self, scan: Callable[[str, int, int], list[tuple[int, Row]]], tenant: str,
              tick: Tick | None) -> Iterator[Row]:
        """Every row ``scan`` pages out, ``self.batch`` at a time, in position order."""
        after = 0
        while page := scan(tenant, after, self.batch):
            if tick is not None:
                tick(len(page))
            for _, row in page:
                yield row
            after = page[-1][0]

    def _vectors(self, db: Database, tenant: str, space: str,
                 tick: Tick | None = None) -> Iterator[tuple[str, Matrix]]:
        for _, found in vector_batches(db.backend, tenant, space, self.batch):
            if tick is not None:
                tick(len(found))
            yield from found.items()

    def _row_differ(self, mine: Node | Edge, theirs: Node | Edge) -> str | None:
        if row_checksum(mine, self.skip) == row_checksum(theirs, self.skip):
            return None
        return f"checksums differ: {', '.join(differing_fields(mine, theirs, self.skip))}"

    @staticmethod
    def _record(check: Check, where: str, diff: Diff[K]) -> None:
        check.compared += diff.compared
        for key in diff.missing:
            check.fail(f"{where}: {key!r} is missing from the destination")
        for key in diff.extra:
            check.fail(f"{where}: {key!r} is in the destination only")
        for key, reason in diff.changed:
            check.fail(f"{where}: {key!r}: {reason}")

    # -- answers ---------------------------------------------------------------------------

    def queries(self, tenant: str, ids: list[str]) -> None:
        mine, theirs = self.source.tenant(tenant), self.dest.tenant(tenant)
        nodes = mine.get_nodes(ids)
        for space in mine.spaces():
            for node_id, vector in mine.get_vectors(ids, space=space.name).items():
                self._vector_query(mine, theirs, f"{tenant}/{space.name}/{node_id}", vector,
                                   space.name)
        for node_id in ids:
            if node_id in nodes:
                self._text_query(mine, theirs, tenant, nodes[node_id].text)
                self._neighbors(mine, theirs, f"{tenant}/{node_id}", node_id)

    def _vector_query(self, mine: Database, theirs: Database, where: str, vector: Matrix,
                      space: str) -> None:
        check = self.checks["vector_search"]
        try:
            left, right = ([(h.id, h.score) for h in db.vector_search(
                vector, k=TOP_K, space=space, exact=True)] for db in (mine, theirs))
        except InvalidInput:
            return  # a vector no search accepts (a zero vector under cosine): nothing to ask
        check.compared += 1
        if (reason := same_ranking(left, right)) is not None:
            check.fail(f"{where}: {reason}")

    def _text_query(self, mine: Database, theirs: Database, tenant: str,
                    text: str | None) -> None:
        word = _query_word(text, ascii_only=not self.same_engine)
        if word is None:
            return
        check = self.checks["text_search"]
        check.compared += 1
        if self.same_engine:
            left, right = ([(h.id, h.score) for h in db.text_search(word, k=TOP_K)]
                           for db in (mine, theirs))
            if (reason := same_ranking(left, right)) is not None:
                check.fail(f"{tenant}/{word!r}: {reason}")
            return
        found = [{h.id for h in db.text_search(word, k=TEXT_SET_K)} for db in (mine, theirs)]
        union = found[0] | found[1]
        overlap = len(found[0] & found[1]) / len(union) if union else 1.0
        self.overlaps.append(overlap)
        if overlap < MIN_TEXT_OVERLAP and len(check.examples) < 20:
            check.examples.append(f"{tenant}/{word!r}: overlap {overlap:.3f} of "
                                  f"{len(found[0])} and {len(found[1])} matches")

    def text_overlap(self) -> None:
        """Across engines, text search passes on the mean overlap of its match sets."""
        check, overlaps = self.checks["text_search"], self.overlaps
        if not overlaps:
            return
        mean = sum(overlaps) / len(overlaps)
        check.detail.update(compare="match sets (Jaccard)", mean_overlap=round(mean, 6),
                            min_overlap=round(min(overlaps), 6))
        if mean < MIN_TEXT_OVERLAP:
            check.problems += 1

    def _neighbors(self, mine: Database, theirs: Database, where: str, node_id: str) -> None:
        check = self.checks["neighbors"]
        answers = [[(n.id, e.src, e.dst, e.type) for n, e in
                    db.neighbors(node_id, direction="both", limit=NEIGHBORS)]
                   for db in (mine, theirs)]
        check.compared += 1
        if answers[0] != answers[1]:
            check.fail(f"{where}: {len(answers[0])} neighbours against {len(answers[1])}, "
                       "or in another order")


def _space(space: VectorSpace, shown: tuple[str, ...] | None) -> dict[str, str | int]:
    values = dict(space.__dict__)
    return values if shown is None else {k: values[k] for k in shown}


def _query_word(text: str | None, *, ascii_only: bool) -> str | None:
    """A word of ``text`` to search for: the longest, among its first twenty words of three
    characters or more (plain ASCII letters only, when the engines differ)."""
    if not text:
        return None
    pattern = r"(?<!\w)[A-Za-z]{3,}(?!\w)" if ascii_only else r"\w{3,}"
    words = re.findall(pattern, text)[:20]
    return max(words, key=len).lower() if words else None


def check_jobs(source: Database, dest: Database) -> Check:
    """The destination queues a job for every (tenant, task, node) waiting in the source."""
    check = Check("jobs")
    mine = {job[:3] for job in pending_jobs(source.backend)}
    theirs = {job[:3] for job in pending_jobs(dest.backend)}
    check.compared = len(mine)
    for key in sorted(mine - theirs):
        check.fail(f"job {key} is not queued in the destination")
    for key in sorted(theirs - mine):
        check.fail(f"job {key} is queued in the destination only")
    return check


def validate(source: Database, dest: Database, *, legacy_dest: bool = False, sample: int = 20,
             batch: int = 1_000, tick: Tick | None = None) -> list[Check]:
    """Every check above, comparing ``dest`` with ``source``; ``tick(rows)`` follows the
    source rows read."""
    return Validation(source, dest, legacy_dest=legacy_dest, sample=sample, batch=batch,
                      tick=tick or (lambda rows: None)).run()
