"""Retrieval quality metrics, with trec_eval's definitions (the ones BEIR reports).

A ranking is judged through its *gains*: the relevance grade of each retrieved item in rank
order, 0 for an item that is not relevant (or that repeats a gold answer already credited).
With the grades of every gold answer, that is all each metric needs, whatever decides
relevance: node ids, or the documents and pages that hits cite.

- ``recall_at_k``: share of the relevant answers (grade > 0) found in the top k.
- ``reciprocal_rank``: 1 / rank of the first relevant item (0 if none); its mean is MRR.
- ``ndcg_at_k``: DCG of the top k (linear gain = grade, discount log2(rank + 1)) over the
  DCG of the ideal ranking of all gold grades; graded relevance counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "dcg",
    "gains_of_ids",
    "mean",
    "ndcg_at_k",
    "recall_at_k",
    "reciprocal_rank",
]

Gains = npt.NDArray[np.float64]


def gains_of_ids(ranked: Sequence[str], relevance: Mapping[str, float]) -> Gains:
    """Gains of a ranking of ids against ``{id: grade}``; a repeated id gains only once."""
    seen: set[str] = set()
    gains = np.zeros(len(ranked), dtype=np.float64)
    for position, item in enumerate(ranked):
        if item not in seen:
            gains[position] = relevance.get(item, 0.0)
            seen.add(item)
    return gains


def recall_at_k(gains: Sequence[float] | Gains, relevant: int, k: int) -> float:
    """Relevant items in the top ``k`` over the ``relevant`` ones there are (0 if none)."""
    if relevant <= 0:
        return 0.0
    top = np.asarray(gains, dtype=np.float64)[:k]
    return float(np.count_nonzero(top > 0)) / relevant


def reciprocal_rank(gains: Sequence[float] | Gains) -> float:
    """1 / the rank of the first relevant item; 0 when none was retrieved."""
    hits = np.flatnonzero(np.asarray(gains, dtype=np.float64) > 0)
    return 1.0 / (int(hits[0]) + 1) if hits.size else 0.0


def dcg(gains: Sequence[float] | Gains, k: int) -> float:
    """Discounted cumulative gain of the top ``k``: sum of grade / log2(rank + 1)."""
    top = np.asarray(gains, dtype=np.float64)[:k]
    discounts = np.log2(np.arange(2, top.size + 2, dtype=np.float64))
    return float(np.sum(top / discounts))


def ndcg_at_k(gains: Sequence[float] | Gains, grades: Iterable[float], k: int = 10) -> float:
    """DCG of the top ``k`` over the best DCG the gold ``grades`` allow (0 if none > 0)."""
    ideal = dcg(np.sort(np.fromiter(grades, dtype=np.float64))[::-1], k)
    return dcg(gains, k) / ideal if ideal > 0 else 0.0


def mean(values: Iterable[float]) -> float | None:
    """The mean of ``values``, ``None`` when there are none (a metric nobody could score)."""
    array = np.fromiter(values, dtype=np.float64)
    return float(array.mean()) if array.size else None
