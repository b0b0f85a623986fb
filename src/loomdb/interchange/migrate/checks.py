"""The comparisons validation is made of: row checksums, keyed stream comparison, vector
agreement and ranked answers that may differ only where scores tie.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from itertools import zip_longest
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from ...model import Edge, JSONObject, Node

__all__ = ["MIN_COSINE", "SCORE_TIE", "Check", "Diff", "StoredVector", "canonical",
           "compare_streams", "differing_fields", "row_checksum", "same_ranking",
           "vector_problem"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
MIN_COSINE = 0.9999
SCORE_TIE = 1e-5  # scores closer than this are a tie: either order is right
EXAMPLES = 20
StoredVector = npt.NDArray[np.float16 | np.float32 | np.float64]  # in its space's storage dtype


@dataclass
class Check:
    """One validation check: what was compared, how many differ, and some examples."""

    name: str
    compared: int = 0
    problems: int = 0
    examples: list[str] = field(default_factory=list)
    detail: JSONObject = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problems == 0

    def fail(self, example: str) -> None:
        self.problems += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)

    def to_dict(self) -> JSONObject:
        return {"name": self.name, "ok": self.ok, "compared": self.compared,
                "problems": self.problems, "examples": [*self.examples], **self.detail}


def _plain(value: object) -> object:
    """A value as checksummed: -0.0 as 0.0 (SQLite does not keep the sign of zero)."""
    if isinstance(value, float) and value == 0.0:
        return 0.0
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def canonical(value: object) -> str:
    """A value as canonical JSON text: floats by repr (exact), dict keys in their order
    (stores keep props' key order), -0.0 as 0.0."""
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"), allow_nan=True)


def row_checksum(row: Node | Edge, skip: frozenset[str] = frozenset()) -> str:
    """A stable hash of every field of a node or edge but its tenant (and ``skip``)."""
    values = {f.name: getattr(row, f.name) for f in fields(row)
              if f.name != "tenant" and f.name not in skip}
    return hashlib.sha256(canonical(values).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def differing_fields(mine: Node | Edge, theirs: Node | Edge, skip: frozenset[str]) -> list[str]:
    """The fields (but the tenant and ``skip``) whose values differ."""
    return [f.name for f in fields(mine) if f.name != "tenant" and f.name not in skip
            and canonical(getattr(mine, f.name)) != canonical(getattr(theirs, f.name))]


@dataclass
class Diff(Generic[K]):
    """Keys only one side holds, and keys whose values differ (with the reason)."""

    compared: int = 0
    missing: list[K] = field(default_factory=list)
    extra: list[K] = field(default_factory=list)
    changed: list[tuple[K, str]] = field(default_factory=list)


def compare_streams(
    left: Iterable[tuple[K, V]], right: Iterable[tuple[K, V]],
    differ: Callable[[V, V], str | None],
) -> Diff[K]:
    """Compare two streams of ``(key, value)`` holding the same keys, usually in the same
    order. Unmatched rows wait for their partner, so when the orders agree memory stays at a
    row or two, and when they do not the result is still right. ``differ`` says why two
    values differ, or None."""
    diff: Diff[K] = Diff()
    waiting: tuple[dict[K, V], dict[K, V]] = ({}, {})
    for pair in zip_longest(left, right):
        for side, item in enumerate(pair):
            if item is None:
                continue
            key, value = item
            other = waiting[1 - side]
            if key in other:
                first, second = (value, other.pop(key)) if side == 0 else (other.pop(key), value)
                diff.compared += 1
                reason = differ(first, second)
                if reason is not None:
                    diff.changed.append((key, reason))
            else:
                waiting[side][key] = value
    diff.missing, diff.extra = list(waiting[0]), list(waiting[1])
    return diff


def vector_problem(source: StoredVector, dest: StoredVector) -> str | None:
    """Why a copied vector is wrong: cosine to the source below ``MIN_COSINE``, or values
    that differ from the source's in the destination's dtype."""
    if source.shape != dest.shape:
        return f"shape {dest.shape}, source {source.shape}"
    a, b = source.astype(np.float64), dest.astype(np.float64)
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    cosine = float(a @ b) / norms if norms else (1.0 if np.array_equal(a, b) else 0.0)
    if not cosine >= MIN_COSINE:
        return f"cosine {cosine:.6f} < {MIN_COSINE}"
    if not np.array_equal(source.astype(dest.dtype), dest):
        return f"values differ from the source's as {dest.dtype} (cosine {cosine:.8f})"
    return None


def same_ranking(left: Sequence[tuple[str, float]], right: Sequence[tuple[str, float]],
                 tie: float = SCORE_TIE) -> str | None:
    """Why two ranked answers differ, or None: they must have the same length and scores
    (within ``tie``), and the same id at each score, except among the ids tied with the
    last score (the cut at k may take any of them)."""
    if len(left) != len(right):
        return f"{len(left)} results against {len(right)}"
    for (_, a), (_, b) in zip(left, right, strict=True):
        if not math.isclose(a, b, rel_tol=tie, abs_tol=tie):
            return f"score {a:.6g} against {b:.6g}"
    if not left:
        return None
    last = left[-1][1]
    scores = (dict(left), dict(right))
    for mine, theirs in (scores, scores[::-1]):
        for key, score in mine.items():
            tail = math.isclose(score, last, rel_tol=tie, abs_tol=tie)
            if not tail and (key not in theirs or
                             not math.isclose(theirs[key], score, rel_tol=tie, abs_tol=tie)):
                return f"{key!r} (score {score:.6g}) is not in the other answer at that score"
    return None
