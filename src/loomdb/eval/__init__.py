"""Retrieval evaluation: golden sets, metrics, and a runner that compares strategies.

    golden.py      read a JSONL golden set (query -> gold ids, or gold documents and pages)
    metrics.py     recall@k, MRR, nDCG@k with graded relevance (trec_eval's definitions)
    strategies.py  the named strategies (dense, bm25, hybrid, hybrid+graph...) and their
                   db.query arguments
    runner.py      evaluate(ask, store, golden, strategies, k) -> EvalReport, which
                   ``Database.evaluate`` runs

Example::

    report = db.evaluate(loomdb.read_golden("golden.jsonl"), ["dense", "bm25", "hybrid"])
    report["hybrid"].metrics["ndcg@10"]
"""

from .golden import ANY_KIND, GoldDocument, GoldenQuery, parse_golden, read_golden
from .runner import EvalReport, ProgressCallback, QueryOutcome, StrategyReport, evaluate
from .strategies import DEFAULT_STRATEGIES, STRATEGIES, EvalStrategy, resolve_strategy

__all__ = [
    "ANY_KIND",
    "DEFAULT_STRATEGIES",
    "STRATEGIES",
    "EvalReport",
    "EvalStrategy",
    "GoldDocument",
    "GoldenQuery",
    "ProgressCallback",
    "QueryOutcome",
    "StrategyReport",
    "evaluate",
    "parse_golden",
    "read_golden",
    "resolve_strategy",
]
