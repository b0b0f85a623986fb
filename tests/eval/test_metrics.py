"""The metrics against values computed by hand, and against trec_eval (pytrec_eval)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loomdb.eval.metrics import (
    dcg,
    gains_of_ids,
    mean,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
)

# A ranking of 5 ids; the gold: b (grade 2), d (1), z (1, never retrieved), e (0: judged, not
# relevant). Gains by rank: a 0, b 2, c 0, d 1, e 0.
RANKED = ["a", "b", "c", "d", "e"]
GOLD = {"b": 2.0, "d": 1.0, "z": 1.0, "e": 0.0}


def test_gains_follow_the_ranking_and_credit_a_repeat_once() -> None:
    assert gains_of_ids(RANKED, GOLD).tolist() == [0, 2, 0, 1, 0]
    assert gains_of_ids(["b", "b", "d"], GOLD).tolist() == [2, 0, 1]
    assert gains_of_ids([], GOLD).size == 0


def test_recall_by_hand() -> None:
    gains = gains_of_ids(RANKED, GOLD)
    assert recall_at_k(gains, 3, 5) == pytest.approx(2 / 3)  # b, d of b, d, z
    assert recall_at_k(gains, 3, 2) == pytest.approx(1 / 3)
    assert recall_at_k(gains, 3, 1) == 0.0
    assert recall_at_k(gains, 0, 5) == 0.0


def test_reciprocal_rank_by_hand() -> None:
    assert reciprocal_rank(gains_of_ids(RANKED, GOLD)) == 0.5
    assert reciprocal_rank([1.0]) == 1.0
    assert reciprocal_rank([0.0, 0.0, 0.0, 3.0]) == 0.25
    assert reciprocal_rank([0.0, 0.0]) == 0.0
    assert reciprocal_rank([]) == 0.0


def test_ndcg_with_graded_relevance_by_hand() -> None:
    gains = gains_of_ids(RANKED, GOLD)
    actual = 2 / math.log2(3) + 1 / math.log2(5)         # b at rank 2, d at rank 4
    ideal = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # b, d, z; e gains 0
    assert dcg(gains, 10) == pytest.approx(actual)
    assert ndcg_at_k(gains, GOLD.values(), 10) == pytest.approx(actual / ideal)
    assert ndcg_at_k(gains, GOLD.values(), 10) == pytest.approx(0.540586, abs=1e-6)
    assert ndcg_at_k(gains, GOLD.values(), 1) == 0.0  # rank 1 is not relevant
    assert ndcg_at_k([2.0, 1.0, 1.0], GOLD.values(), 10) == pytest.approx(1.0)
    assert ndcg_at_k([0.0, 0.0], [0.0], 10) == 0.0  # nothing to find: 0, not a division error


def test_ndcg_only_counts_the_top_k() -> None:
    gains = [0.0] * 10 + [5.0]
    assert ndcg_at_k(gains, [5.0], 10) == 0.0
    assert ndcg_at_k(gains, [5.0], 11) == pytest.approx(1 / math.log2(12))


def test_mean_of_nothing_is_none() -> None:
    assert mean([]) is None
    assert mean([1.0, 0.0, 0.5]) == pytest.approx(0.5)


@given(st.lists(st.integers(0, 3), max_size=30), st.lists(st.integers(0, 3), max_size=30))
def test_ndcg_lies_in_zero_one_and_the_ideal_order_scores_one(
        retrieved: list[int], unretrieved: list[int]) -> None:
    grades = [float(g) for g in retrieved + unretrieved]
    value = ndcg_at_k([float(g) for g in retrieved], grades, 10)
    assert 0.0 <= value <= 1.0 + 1e-12
    if any(grades):
        assert ndcg_at_k(sorted(grades, reverse=True), grades, 10) == pytest.approx(1.0)


def test_agrees_with_trec_eval_on_random_graded_runs() -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval", reason="pytrec-eval-terrier (dev extra)")
    rng = np.random.default_rng(42)
    docs = [f"d{i}" for i in range(120)]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(60):
        judged = rng.choice(docs, size=int(rng.integers(1, 25)), replace=False)
        grades = rng.integers(0, 3, size=len(judged))
        grades[0] = max(grades[0], 1)  # at least one relevant
        qrels[f"q{q}"] = {str(d): int(g) for d, g in zip(judged, grades, strict=True)}
        retrieved = rng.choice(docs, size=int(rng.integers(0, 40)), replace=False)
        run[f"q{q}"] = {str(d): float(100 - i) for i, d in enumerate(retrieved)}
    measures = {"ndcg_cut_10", "recall_10", "recip_rank"}
    reference = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    for q, gold in qrels.items():
        ranked = sorted(run[q], key=lambda d: -run[q][d])
        gains = gains_of_ids(ranked, {d: float(g) for d, g in gold.items()})
        relevant = sum(1 for g in gold.values() if g > 0)
        expected = reference.get(q, {"ndcg_cut_10": 0.0, "recall_10": 0.0, "recip_rank": 0.0})
        assert ndcg_at_k(gains, map(float, gold.values()), 10) == pytest.approx(
            expected["ndcg_cut_10"], abs=1e-4), q
        assert recall_at_k(gains, relevant, 10) == pytest.approx(expected["recall_10"],
                                                                 abs=1e-4), q
        assert reciprocal_rank(gains) == pytest.approx(expected["recip_rank"], abs=1e-4), q
