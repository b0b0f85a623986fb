"""Golden sets: the queries an evaluation asks and what a right answer is, as JSON Lines.

One JSON object per line (blank lines are skipped)::

    {"query": "who discovered radium", "gold_ids": ["c12", "c40"]}
    {"query": "radium half-life", "gold_ids": {"c12": 2, "c40": 1, "c41": 0}}
    {"query": "radium", "gold": [{"document": "curie.pdf", "page": 3}, {"document": "nobel"}]}

- ``gold_ids``: the relevant node ids, as a list (grade 1 each) or as ``{id: grade}`` for
  graded relevance (``0`` = judged not relevant, as in TREC/BEIR qrels).
- ``gold``: relevant sources instead of nodes: a hit is relevant when its citation names the
  ``document`` (and the ``page``, when given); each entry may carry a ``grade``. Each entry
  counts once, however many chunks of it are retrieved.
- Optional: ``id`` (a name for the query), ``where`` (a metadata filter, see
  ``loomdb.filters``), ``kind`` (the node kind searched; ``"*"`` for any kind; absent:
  the evaluation's default). Other keys are ignored, so a golden set may carry answers or
  notes.

A golden set is untrusted input: every value is checked, and a malformed line raises
``InvalidInput`` naming its line number. Texts stay data: the query text reaches the store
only as a search string, the filter only through the filter parser.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from typing import NoReturn

from ..errors import InvalidFilter, InvalidInput
from ..filters import parse_filter
from ..model import Citation, JSONObject
from ..validation import MAX_ID_LENGTH

__all__ = [
    "ANY_KIND",
    "GoldDocument",
    "GoldenQuery",
    "parse_golden",
    "read_golden",
]

ANY_KIND = "*"
MAX_LINE_BYTES = 1 << 20
MAX_QUERY_CHARS = 10_000
MAX_GOLD = 10_000
MAX_QUERIES = 1_000_000


@dataclass(frozen=True)
class GoldDocument:
    """A relevant source: any chunk citing ``document`` (on ``page``, when given)."""

    document: str
    page: int | None = None
    grade: float = 1.0

    def cited_by(self, citation: Citation | None) -> bool:
        """Whether ``citation`` points into this source."""
        return citation is not None and citation.document == self.document and (
            self.page is None or citation.page == self.page)


@dataclass(frozen=True)
class GoldenQuery:
    """One query of a golden set and its judged answers (see the module docstring).

    Exactly one of ``gold_ids`` and ``gold_documents`` is non-empty. ``kind`` is ``None``
    when the line does not say, so the evaluation's default applies.
    """

    line: int
    query: str
    gold_ids: Mapping[str, float] = field(default_factory=dict)
    gold_documents: tuple[GoldDocument, ...] = ()
    id: str | None = None
    where: JSONObject | None = None
    kind: str | None = None

    @property
    def relevant(self) -> int:
        """How many gold answers are relevant (grade above 0): recall's denominator."""
        grades = self.gold_ids.values() if self.gold_ids else (
            g.grade for g in self.gold_documents)
        return sum(1 for grade in grades if grade > 0)

    @property
    def grades(self) -> list[float]:
        """Every gold grade, for the ideal ranking of nDCG."""
        if self.gold_ids:
            return list(self.gold_ids.values())
        return [g.grade for g in self.gold_documents]


def read_golden(path: str | PathLike[str]) -> list[GoldenQuery]:
    """The golden set in the JSONL file at ``path``; ``InvalidInput`` naming the first bad
    line. A UTF-8 byte-order mark is allowed."""
    with open(path, "rb") as lines:
        return parse_golden(lines)


def parse_golden(lines: Iterable[bytes | str]) -> list[GoldenQuery]:
    """The golden set in ``lines`` (bytes or text, one JSON object each)."""
    found: list[GoldenQuery] = []
    for number, raw in enumerate(lines, start=1):
        text = _decode(raw, number)
        if not text.strip():
            continue
        if len(found) >= MAX_QUERIES:
            raise InvalidInput(f"line {number}: a golden set holds at most {MAX_QUERIES:,} "
                               "queries")
        found.append(_golden_query(_json_object(text, number), number))
    if not found:
        raise InvalidInput("the golden set has no queries")
    return found


def _decode(raw: bytes | str, number: int) -> str:
    size = len(raw)
    if size > MAX_LINE_BYTES:
        raise InvalidInput(f"line {number}: longer than {MAX_LINE_BYTES:,} bytes")
    if isinstance(raw, str):
        return raw.removeprefix("\ufeff") if number == 1 else raw
    try:
        return raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"line {number}: not UTF-8 ({exc.reason} at byte {exc.start})") \
            from None


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number JSON allows")


def _json_object(text: str, number: int) -> JSONObject:
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise InvalidInput(f"line {number}: not valid JSON: {reason:.200}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"line {number}: expected a JSON object, got "
                           f"{type(value).__name__}")
    return value


def _golden_query(item: JSONObject, number: int) -> GoldenQuery:
    query = _text(item.get("query"), "query", number, MAX_QUERY_CHARS)
    if ("gold_ids" in item) == ("gold" in item):
        raise InvalidInput(f"line {number}: give exactly one of gold_ids (node ids) and "
                           "gold (documents and pages)")
    ids = _gold_ids(item["gold_ids"], number) if "gold_ids" in item else {}
    documents = _gold_documents(item["gold"], number) if "gold" in item else ()
    golden = GoldenQuery(number, query, ids, documents,
                         id=_optional_text(item, "id", number), where=_where(item, number),
                         kind=_optional_text(item, "kind", number))
    if golden.relevant == 0:
        raise InvalidInput(f"line {number}: no gold answer has a grade above 0, so the "
                           "query cannot be scored")
    return golden


def _text(value: object, what: str, number: int, limit: int = MAX_ID_LENGTH) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"line {number}: {what} must be a non-empty string")
    if len(value) > limit or "\x00" in value:
        raise InvalidInput(f"line {number}: {what} must be at most {limit:,} characters, "
                           "without NUL")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidInput(f"line {number}: {what} is not valid Unicode (a lone surrogate)") \
            from None
    return value


def _optional_text(item: JSONObject, key: str, number: int) -> str | None:
    return None if item.get(key) is None else _text(item[key], key, number)


def _grade(value: object, what: str, number: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or value < 0:
        raise InvalidInput(f"line {number}: {what} must be a finite number >= 0")
    return float(value)


def _gold_ids(value: object, number: int) -> dict[str, float]:
    if isinstance(value, list):
        pairs: list[tuple[object, object]] = [(gold, 1) for gold in value]
    elif isinstance(value, dict):
        pairs = list(value.items())
    else:
        raise InvalidInput(f"line {number}: gold_ids must be a list of ids or an object "
                           "{id: grade}")
    if len(pairs) > MAX_GOLD:
        raise InvalidInput(f"line {number}: at most {MAX_GOLD:,} gold ids per query")
    return {_text(gold, "a gold id", number): _grade(grade, f"the grade of {gold!r:.40}",
                                                     number)
            for gold, grade in pairs}


def _gold_documents(value: object, number: int) -> tuple[GoldDocument, ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_GOLD:
        raise InvalidInput(f"line {number}: gold must be a list of 1 to {MAX_GOLD:,} "
                           '{"document": ..., "page": ...} objects')
    return tuple(_gold_document(entry, number) for entry in value)


def _gold_document(entry: object, number: int) -> GoldDocument:
    if not isinstance(entry, dict):
        raise InvalidInput(f"line {number}: each gold entry must be an object with a "
                           "document")
    page = entry.get("page")
    if page is not None and (isinstance(page, bool) or not isinstance(page, int)):
        raise InvalidInput(f"line {number}: a gold page must be an integer")
    grade = _grade(entry.get("grade", 1), "a gold grade", number)
    return GoldDocument(_text(entry.get("document"), "a gold document", number), page, grade)


def _where(item: JSONObject, number: int) -> JSONObject | None:
    where = item.get("where")
    if where is None:
        return None
    if not isinstance(where, dict):
        raise InvalidInput(f"line {number}: where must be a filter object")
    try:
        parse_filter(where)
    except InvalidFilter as exc:
        raise InvalidFilter(f"line {number}: {exc.message}") from None
    return where
