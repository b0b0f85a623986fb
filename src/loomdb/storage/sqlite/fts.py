"""Full-text queries for FTS5: plain words (never syntax), with the commonest terms dropped.

A term found in a large share of the documents ("the", "is") adds almost nothing to BM25 (its
IDF is near zero) but makes FTS5 walk and rank most of the index: on 1M documents a query
with "the" ranks ~600,000 rows. Like a search engine's stop-word list, but measured on the
store itself, terms in more than ``COMMON_SHARE`` of the documents are left out of the query;
if every term is that common, the rarest one is kept. Document frequencies come from an
``fts5vocab`` table (schema v3) and are remembered per term, since looking up a common term's
frequency is itself a walk of its list; they are refreshed when the store has grown by a
tenth.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable
from typing import Any

from ...errors import LoomError

__all__ = ["COMMON_SHARE", "TermStats", "bm25_scores", "fts_query", "tokens"]

COMMON_SHARE = 0.2
PRUNE_FROM = 1000  # documents: below this every word is searched
MAX_TERMS = 64
MEMO = 100_000
WORD = re.compile(r"\w+")


def _fold(word: str) -> str:
    """The form FTS5's ``unicode61 remove_diacritics 2`` tokenizer indexes a word under."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fts_query(words: list[str]) -> str | None:
    """Words as an FTS5 query: each quoted (so none is syntax), OR-ed for BM25."""
    return " OR ".join(f'"{w}"' for w in words) if words else None


class TermStats:
    """Document frequencies of terms, for pruning the commonest from queries.

    Args:
        query: runs one SQL statement on a read connection and returns its rows.
    """

    def __init__(self, query: Callable[[str, tuple[Any, ...]], list[Any]]) -> None:
        self._query = query
        self._frequency: dict[str, int] = {}
        self._documents = 0
        self._lock = threading.Lock()

    def words(self, text: str) -> list[str]:
        """The words of ``text`` worth searching for (see the module docstring). Words in no
        document are dropped before the rule applies, so a common word is kept when it is
        the only one that can match; small stores (under ``PRUNE_FROM`` documents) are
        searched for every word, as pruning only pays at scale."""
        words = list(dict.fromkeys(WORD.findall(text)))[:MAX_TERMS]
        if len(words) < 2:
            return words
        try:
            documents = self._documents_now()
            if documents < PRUNE_FROM:
                return words
            frequency = {w: self._frequency_of(_fold(w)) for w in words}
        except (sqlite3.OperationalError, LoomError):  # before schema v3, opened read-only
            return words
        present = [w for w in words if frequency[w] > 0]
        kept = [w for w in present if frequency[w] <= COMMON_SHARE * documents]
        if kept:
            return kept
        return [min(present, key=lambda w: frequency[w])] if present else words

    def frequencies(self, terms: list[str]) -> dict[str, int]:
        """Document frequency of each (folded) term."""
        return {t: self._frequency_of(t) for t in terms}

    def totals(self) -> tuple[int, float]:
        """Documents in the index and their average length in tokens, from FTS5's averages
        record (the numbers its own ``bm25()`` uses)."""
        rows = self._query("SELECT block FROM nodes_fts_data WHERE id = 1", ())
        values = _varints(bytes(rows[0][0])) if rows and rows[0][0] else []
        if len(values) < 2 or values[0] <= 0:
            return 0, 1.0
        return values[0], values[1] / values[0]

    def _documents_now(self) -> int:
        rows = self._query("SELECT max(rowid) FROM nodes_fts", ())
        documents = int(rows[0][0] or 0) if rows else 0
        with self._lock:
            if documents > 1.1 * self._documents or documents < 0.9 * self._documents:
                self._frequency.clear()  # the store changed enough: measure again
                self._documents = documents
        return documents

    def _frequency_of(self, term: str) -> int:
        with self._lock:
            known = self._frequency.get(term)
        if known is not None:
            return known
        rows = self._query("SELECT doc FROM nodes_fts_vocab WHERE term = ?", (term,))
        found = int(rows[0][0]) if rows else 0
        with self._lock:
            if len(self._frequency) >= MEMO:
                self._frequency.clear()
            self._frequency[term] = found
        return found


TOKEN = re.compile(r"[^\W_]+")  # unicode61: letters and digits; "_" separates, like spaces
K1, B = 1.2, 0.75              # FTS5's bm25() constants


def tokens(text: str) -> list[str]:
    """``text`` as FTS5's ``unicode61 remove_diacritics 2`` tokenizer splits and folds it."""
    return [_fold(t) for t in TOKEN.findall(text)]


def _varints(blob: bytes) -> list[int]:
    """SQLite's variable-length integers (as FTS5 writes its averages record)."""
    values, i = [], 0
    while i < len(blob):
        value = 0
        for j in range(9):
            byte = blob[i]
            i += 1
            if j == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        values.append(value)
    return values


def bm25_scores(
    query_terms: list[str], texts: dict[str, str], frequency: dict[str, int],
    documents: int, average_length: float,
) -> dict[str, float]:
    """Okapi BM25 of each text for ``query_terms``, as FTS5's ``bm25()`` computes it (IDF
    floored at 1e-6), higher is better; texts matching no term are left out."""
    idf = {}
    for term in query_terms:
        n = frequency.get(term, 0)
        value = math.log((documents - n + 0.5) / (n + 0.5)) if documents else 0.0
        idf[term] = value if value > 0 else 1e-6
    scores = {}
    for node_id, text in texts.items():
        words = tokens(text)
        counts = Counter(words)
        norm = K1 * (1 - B + B * len(words) / max(average_length, 1e-9))
        score = sum(idf[t] * counts[t] * (K1 + 1) / (counts[t] + norm)
                    for t in query_terms if counts.get(t))
        if score:
            scores[node_id] = score
    return scores
