"""Full text on SQLite: plain words (never syntax), BM25 per tenant, the commonest terms dropped.

**BM25 per tenant.** FTS5's own ``bm25()`` counts every row of the one index, so one tenant's
texts would change another's scores and, through pruning, its hits. Scores are computed here
instead, with FTS5's formula, constants and order of operations, over the tenant's own
statistics: its document count and token total (``text_totals``, kept by triggers), the
document frequency of each query word among its documents, and each document's term
frequencies and length read from the index (``storage/sqlite/text.py``).

**Common terms.** A term found in a large share of the documents ("the", "is") adds almost
nothing to BM25 (its IDF is near zero) but makes the search walk most of the index. Like a
search engine's stop-word list, but measured on the tenant's own documents, terms in more than
``COMMON_SHARE`` of them are left out of the query; if every term is that common, the rarest
one is kept. Frequencies are remembered per tenant and term, since counting a common term is
itself a walk of its list, and forgotten when the tenant's document count moves by a tenth.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ...errors import LoomError

__all__ = ["COMMON_SHARE", "TermStats", "average_length", "bm25", "bm25_many", "bm25_scores",
           "first_varints", "idf_of", "phrase_of", "query_words", "tokens"]

COMMON_SHARE = 0.2
PRUNE_FROM = 1000  # a tenant's documents: below this every word is searched
MAX_TERMS = 64
MEMO = 100_000     # remembered frequencies, all tenants together
WORD = re.compile(r"\w+")
K1, B = 1.2, 0.75              # FTS5's bm25() constants
MATCH_COUNT = ("SELECT count(*) FROM nodes_fts JOIN nodes n ON n.nid = nodes_fts.rowid "
               "WHERE nodes_fts MATCH ? AND n.tenant = ?")


class _Tokenizer:
    """FTS5's ``unicode61 remove_diacritics 2`` tokenizer, replayed exactly: it reads text
    one character at a time, and each character is either a separator or folds to a fixed
    string (empty for a diacritic). ASCII is known by rule; any other character is asked of
    FTS5 itself once (in a private in-memory table) and remembered."""

    def __init__(self) -> None:
        self._folds: dict[str, str | None] = {}  # None: a separator
        self._lock = threading.Lock()
        self._probe: sqlite3.Connection | None = None

    def tokens(self, text: str) -> list[str]:
        if text.isascii():
            return ASCII_TOKEN.findall(text.lower())
        folds = self._folds_of(set(text))
        found: list[str] = []
        current: list[str] = []
        for char in text:
            fold = folds[char]
            if fold is None:
                if current:
                    found.append("".join(current))
                current = []
            else:
                current.append(fold)
        if current:
            found.append("".join(current))
        return [t for t in found if t]

    def _folds_of(self, chars: set[str]) -> dict[str, str | None]:
        with self._lock:
            unknown = sorted(c for c in chars if c not in self._folds and not c.isascii())
            if unknown:
                self._folds.update(self._ask_fts5(unknown))
            return {c: self._fold_ascii(c) if c.isascii() else self._folds[c] for c in chars}

    @staticmethod
    def _fold_ascii(char: str) -> str | None:
        return char.lower() if char.isalnum() else None

    def _ask_fts5(self, chars: list[str]) -> dict[str, str | None]:
        if self._probe is None:
            self._probe = sqlite3.connect(":memory:", check_same_thread=False)
            self._probe.executescript(
                "CREATE VIRTUAL TABLE probe USING fts5 (t, tokenize = 'unicode61 "
                "remove_diacritics 2'); CREATE VIRTUAL TABLE probe_terms USING fts5vocab "
                "(probe, 'instance');")
        conn = self._probe
        conn.executemany("INSERT INTO probe (rowid, t) VALUES (?, ?)",
                         [(i, f"a{c}a") for i, c in enumerate(chars)])
        terms: dict[int, list[str]] = {}
        for term, doc in conn.execute("SELECT term, doc FROM probe_terms ORDER BY doc, offset"):
            terms.setdefault(doc, []).append(term)
        conn.execute("DELETE FROM probe")
        # "a?a": the character folds to "?"; "a", "a": it separates words
        return {c: terms[i][0][1:-1] if len(terms.get(i, [])) == 1 else None
                for i, c in enumerate(chars)}


ASCII_TOKEN = re.compile(r"[a-z0-9]+")
_TOKENIZER = _Tokenizer()


def tokens(text: str) -> list[str]:
    """``text`` as FTS5's ``unicode61 remove_diacritics 2`` tokenizer splits and folds it."""
    return _TOKENIZER.tokens(text)


def query_words(text: str) -> list[str]:
    """The distinct words of a query, in order (at most ``MAX_TERMS``)."""
    return list(dict.fromkeys(WORD.findall(text)))[:MAX_TERMS]


def phrase_of(word: str) -> str:
    """A query word as an FTS5 phrase: quoted, so it is never syntax."""
    return f'"{word}"'


Totals = Callable[[str], tuple[int, int]]


class TermStats:
    """Document frequencies of words per tenant, for pruning the commonest from its queries.

    Args:
        query: runs one SQL statement on a read connection and returns its rows.
        totals: a tenant's documents and tokens.
    """

    def __init__(self, query: Callable[[str, tuple[Any, ...]], list[Any]],
                 totals: Totals) -> None:
        self._query = query
        self._totals = totals
        self._memo: dict[str, tuple[int, dict[str, int]]] = {}
        self._size = 0
        self._lock = threading.Lock()

    def words(self, tenant: str, text: str) -> list[str]:
        """The words of ``text`` worth searching for in ``tenant`` (see the module docstring).
        Words in none of its documents are dropped before the rule applies, so a common word
        is kept when it is the only one that can match; small tenants (under ``PRUNE_FROM``
        documents) are searched for every word, as pruning only pays at scale."""
        words = query_words(text)
        if len(words) < 2:
            return words
        try:
            documents = self._totals(tenant)[0]
            if documents < PRUNE_FROM:
                return words
            frequency = {w: self.frequency(tenant, w) for w in words}
        except (sqlite3.OperationalError, LoomError):  # a malformed phrase, say
            return words
        present = [w for w in words if frequency[w] > 0]
        kept = [w for w in present if frequency[w] <= COMMON_SHARE * documents]
        if kept:
            return kept
        return [min(present, key=lambda w: frequency[w])] if present else words

    def frequency(self, tenant: str, word: str) -> int:
        """How many of ``tenant``'s documents hold ``word`` (remembered, see above)."""
        documents, key = self._totals(tenant)[0], " ".join(tokens(word))
        with self._lock:
            seen, known = self._memo.get(tenant, (documents, {}))
            if not 0.9 * seen <= documents <= 1.1 * seen:
                self._size -= len(known)
                seen, known = documents, {}  # the tenant changed enough: measure again
            self._memo[tenant] = (seen, known)
            found = known.get(key)
        if found is not None:
            return found
        found = int(self._query(MATCH_COUNT, (phrase_of(word), tenant))[0][0])
        with self._lock:
            if self._size >= MEMO:
                self._memo.clear()
                self._size = 0
            self._memo.setdefault(tenant, (documents, {}))[1][key] = found
            self._size += 1
        return found


def bm25(
    frequencies: Sequence[float], length: int, idf: Sequence[float], average_length: float
) -> float:
    """One document's BM25 for a query's phrases, as FTS5's ``bm25()`` computes it, in its
    order of operations (so a score is the same to the last bit): ``frequencies`` and ``idf``
    are per phrase, ``length`` is the document's in tokens. Higher is better."""
    score = 0.0
    for f, weight in zip(frequencies, idf, strict=True):
        score += weight * ((f * (K1 + 1.0)) / (f + K1 * (1 - B + B * length / average_length)))
    return score


def bm25_many(
    frequencies: npt.NDArray[np.float64], lengths: npt.NDArray[np.float64],
    idf: Sequence[float], average_length: float,
) -> npt.NDArray[np.float64]:
    """``bm25`` of many documents at once (a row of ``frequencies`` and a length each), in
    the same order of operations, so each score equals ``bm25``'s to the last bit."""
    scores = np.zeros(len(lengths))
    norm = K1 * (1 - B + B * lengths / average_length)
    for i, weight in enumerate(idf):
        f = frequencies[:, i]
        scores += weight * ((f * (K1 + 1.0)) / (f + norm))
    return scores


def first_varints(blobs: Sequence[bytes]) -> npt.NDArray[np.int64]:
    """The first SQLite variable-length integer of each blob (FTS5 writes a document's
    length in tokens so, in its ``docsize`` record), up to 2^28."""
    if not blobs:
        return np.zeros(0, dtype=np.int64)
    raw = np.frombuffer(b"".join(b[:4].ljust(4, b"\0") for b in blobs), dtype=np.uint8)
    data = raw.reshape(-1, 4).astype(np.int64)
    value, result = data[:, 0] & 0x7F, data[:, 0].copy()
    more = data[:, 0] >= 0x80
    for i in range(1, 4):
        value = (value << 7) | (data[:, i] & (0x7F if i < 3 else 0xFF))
        result = np.where(more, value, result)
        more &= data[:, i] >= 0x80
    return result


def idf_of(frequency: int, documents: int) -> float:
    """FTS5's IDF of a phrase in ``frequency`` of ``documents`` documents, floored at 1e-6."""
    value = math.log((documents - frequency + 0.5) / (frequency + 0.5))
    return value if value > 0.0 else 1e-6


def average_length(documents: int, total_tokens: int) -> float:
    """The average document length FTS5 divides by (tokens over documents)."""
    return float(total_tokens) / float(documents) if documents else 1.0


def bm25_scores(
    query_terms: list[str], texts: Mapping[str, str], frequency: Mapping[str, int],
    documents: int, total_tokens: int,
) -> dict[str, float]:
    """BM25 of each text for ``query_terms`` (one phrase each), tokenized here rather than
    read from the index; texts matching no term are left out."""
    idf = [idf_of(frequency.get(t, 0), documents) for t in query_terms]
    average = average_length(documents, total_tokens)
    scores = {}
    for node_id, text in texts.items():
        words = tokens(text)
        counts = Counter(words)
        if any(counts.get(t) for t in query_terms):
            scores[node_id] = bm25([float(counts[t]) for t in query_terms], len(words), idf,
                                   average)
    return scores
