"""Full-text search on SQLite, scored per tenant: the ``TextSearch`` part of the protocol.

FTS5 finds the documents and knows their term frequencies and lengths; the scores are BM25
over the tenant's own statistics (``fts.py`` says why), so what one tenant stores never moves
another's scores or hits. A store opened read-only before schema v4 has no per-tenant totals:
it is searched as before, by FTS5's ``bm25()`` over the whole index.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ...filters import FilterNode
from ...model import Node
from ..base import TextSearch
from ..sql_filters import to_sql
from .connection import Connection
from .filters import SQLITE
from .fts import (
    TermStats,
    average_length,
    bm25_many,
    bm25_scores,
    first_varints,
    idf_of,
    phrase_of,
    query_words,
    tokens,
)
from .rows import NODE_COLUMNS, decode_node

__all__ = ["SqliteTextSearch"]

IN_JSON = "(SELECT value FROM json_each(?))"
# (document, term, occurrences) of the tenant's documents holding any of the terms
COUNTS = ("SELECT v.doc, v.term, count(*) FROM nodes_fts_instance v JOIN nodes n "
          f"ON n.nid = v.doc WHERE v.term IN {IN_JSON} AND n.tenant = ? GROUP BY v.doc, v.term")
OFFSETS = ("SELECT v.doc, v.term, v.offset FROM nodes_fts_instance v JOIN nodes n "
           f"ON n.nid = v.doc WHERE v.term IN {IN_JSON} AND n.tenant = ?")


class SqliteTextSearch(TextSearch):
    """Mixed into ``SqliteBackend``."""

    _db: Connection
    _terms: TermStats
    _per_tenant_text: bool

    def text_totals(self, tenant: str) -> tuple[int, int]:
        """The tenant's documents (nodes with text) and their length in tokens."""
        rows = self._db.query("SELECT documents, tokens FROM text_totals WHERE tenant = ?",
                              (tenant,))
        return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)

    def text_search(
        self, tenant: str, query: str, k: int, where: FilterNode | None
    ) -> list[tuple[Node, float]]:
        words = self._terms.words(tenant, query) if self._per_tenant_text else \
            query_words(query)
        if not words:
            return []
        if not self._per_tenant_text:
            return self._whole_index_search(tenant, words, k, where)
        phrases = [tokens(w) for w in words]
        docs, frequencies = self._phrase_frequencies(tenant, phrases)
        documents, total = self.text_totals(tenant)
        idf = [idf_of(int(np.count_nonzero(column)), documents) for column in frequencies.T]
        keep = self._filtered(docs, where)
        docs, frequencies = docs[keep], frequencies[keep]
        scores = bm25_many(frequencies, self._lengths(docs), idf,
                           average_length(documents, total))
        best = np.lexsort((docs, -scores))[:k]
        nodes = self._nodes_by_nid([int(d) for d in docs[best]])
        return [(nodes[int(docs[i])], float(scores[i])) for i in best]

    def text_scores(self, tenant: str, query: str, ids: Sequence[str],
                    k: int) -> list[tuple[str, float]]:
        """BM25 of just these nodes, computed from their texts with the tenant's statistics
        (as ``text_search`` scores them): a search of the whole index for common words costs
        far more than scoring a neighbourhood's few thousand texts."""
        if not self._per_tenant_text:
            return super().text_scores(tenant, query, ids, k)
        terms = list(dict.fromkeys(tokens(" ".join(self._terms.words(tenant, query)))))
        if not terms or not ids:
            return []
        rows = self._db.query(
            "SELECT n.id, n.text FROM json_each(?) j CROSS JOIN nodes n ON n.tenant = ? "
            "AND n.id = j.value WHERE n.text IS NOT NULL", (json.dumps(list(ids)), tenant))
        documents, total = self.text_totals(tenant)
        frequency = {t: self._terms.frequency(tenant, t) for t in terms}
        scores = bm25_scores(terms, {r[0]: r[1] for r in rows}, frequency, documents, total)
        return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]

    def _phrase_frequencies(
        self, tenant: str, phrases: list[list[str]]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The tenant's documents holding any phrase (ascending) and how often each phrase
        occurs in each: single terms counted by the index, longer phrases found by their
        terms' offsets."""
        singles = sorted({p[0] for p in phrases if len(p) == 1})
        rows = self._db.query(COUNTS, (json.dumps(singles), tenant)) if singles else []
        longer = _phrase_offsets(self._db.query(OFFSETS, (json.dumps(
            sorted({t for p in phrases if len(p) > 1 for t in p})), tenant)), phrases) \
            if any(len(p) > 1 for p in phrases) else {}
        docs = np.unique(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                         if not longer else [r[0] for r in rows] + [d for d, _ in longer])
        frequencies = np.zeros((len(docs), len(phrases)))
        if rows:
            where = np.searchsorted(docs, np.array([r[0] for r in rows], dtype=np.int64))
            terms = np.array([r[1] for r in rows], dtype=object)
            counts = np.array([r[2] for r in rows], dtype=np.float64)
            for i, phrase in enumerate(phrases):
                if len(phrase) == 1:
                    mask = terms == phrase[0]
                    frequencies[where[mask], i] = counts[mask]
        for (doc, i), count in longer.items():
            frequencies[np.searchsorted(docs, doc), i] = count
        held = frequencies.any(axis=1)
        return docs[held], frequencies[held]

    def _filtered(self, docs: npt.NDArray[np.int64],
                  where: FilterNode | None) -> npt.NDArray[np.bool_]:
        """Which of ``docs`` pass the filter."""
        if where is None or not len(docs):
            return np.ones(len(docs), dtype=bool)
        sql, params = to_sql(where, SQLITE)
        rows = self._db.query(
            f"SELECT n.nid FROM json_each(?) j CROSS JOIN nodes n ON n.nid = j.value "
            f"WHERE ({sql})", (json.dumps(docs.tolist()), *params))
        return np.isin(docs, np.array([row[0] for row in rows], dtype=np.int64))

    def _lengths(self, docs: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Each document's length in tokens, from FTS5's docsize records."""
        rows = self._db.query(f"SELECT sz FROM nodes_fts_docsize WHERE id IN {IN_JSON} "
                              "ORDER BY id", (json.dumps(docs.tolist()),))
        return first_varints([bytes(row[0]) for row in rows]).astype(np.float64)

    def _nodes_by_nid(self, nids: list[int]) -> dict[int, Node]:
        rows = self._db.query(f"SELECT n.nid, {NODE_COLUMNS} FROM nodes n WHERE n.nid IN "
                              f"{IN_JSON}", (json.dumps(nids),))
        return {row[0]: decode_node(row[1:]) for row in rows}

    def _whole_index_search(self, tenant: str, words: list[str], k: int,
                            where: FilterNode | None) -> list[tuple[Node, float]]:
        """Before schema v4 (read-only): FTS5's ``bm25()``, statistics of the whole index."""
        clause, params = "", []
        if where is not None:
            sql, values = to_sql(where, SQLITE)
            clause, params = f" AND ({sql})", list(values)
        rows = self._db.query(
            f"SELECT {NODE_COLUMNS}, bm25(nodes_fts) AS rank FROM nodes_fts "
            "JOIN nodes n ON n.nid = nodes_fts.rowid "
            f"WHERE nodes_fts MATCH ? AND n.tenant = ?{clause} ORDER BY rank LIMIT ?",
            (" OR ".join(phrase_of(w) for w in words), tenant, *params, k))
        return [(decode_node(row), -float(row[-1])) for row in rows]


def _phrase_offsets(rows: list[Any], phrases: list[list[str]]) -> dict[tuple[int, int], int]:
    """(document, phrase index) -> occurrences of each multi-term phrase, from the (document,
    term, offset) rows of its terms: places where its terms follow one another."""
    offsets: dict[tuple[int, str], set[int]] = defaultdict(set)
    for doc, term, offset in rows:
        offsets[(doc, term)].add(offset)
    found: dict[tuple[int, int], int] = {}
    for doc in {d for d, _ in offsets}:
        for i, phrase in enumerate(phrases):
            if len(phrase) < 2:
                continue
            starts = offsets.get((doc, phrase[0]), set())
            count = sum(1 for o in starts if all(o + j in offsets.get((doc, t), ())
                                                  for j, t in enumerate(phrase)))
            if count:
                found[(doc, i)] = count
    return found
