"""Evaluation command: how well each retrieval strategy answers a golden set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from loomdb import DEFAULT_EVAL_STRATEGIES, EVAL_STRATEGIES, EvalReport, NotFound, read_golden

from .common import JsonOpt, StoreOpt, TenantOpt, cell, open_store, print_json, stdout

__all__ = ["eval_"]

def eval_(
    dataset: Annotated[Path, typer.Argument(
        help='Golden set, JSON Lines: {"query": ..., "gold_ids": [...]} or '
             '{"query": ..., "gold": [{"document": ..., "page": ...}]} per line.')],
    strategy: Annotated[list[str] | None, typer.Option(
        "--strategy", help=f"Strategy to measure (repeatable): {', '.join(EVAL_STRATEGIES)}. "
                           f"Default: {', '.join(DEFAULT_EVAL_STRATEGIES)}.")] = None,
    k: Annotated[int, typer.Option("--k", "-k", help="Hits per query (recall@k).")] = 10,
    kind: Annotated[str, typer.Option(
        help="Node kind searched unless a query names one; '*' for any kind.")] = "chunk",
    store: StoreOpt = None, tenant: TenantOpt = "default", as_json: JsonOpt = False,
) -> None:
    """Score retrieval on a golden set: recall@k, MRR, nDCG@10, citation accuracy and
    latency (p50/p95/p99) for each strategy, every query run uncached.

    Example: loomdb eval golden.jsonl --strategy hybrid --strategy bm25 --k 20 --store ./kb
    """
    if not dataset.is_file():
        raise NotFound(f"no golden set at {dataset}")
    golden = read_golden(dataset)
    names = strategy or list(DEFAULT_EVAL_STRATEGIES)
    with open_store(store, tenant) as db, _bar(not as_json) as progress:
        tasks = {name: progress.add_task(name, total=len(golden)) for name in names}
        report = db.evaluate(golden, names, k=k, kind=kind,
                             progress=lambda name, done, _: progress.update(tasks[name],
                                                                            completed=done))
    if as_json:
        print_json(report.to_dict())
        return
    console = stdout()
    console.print(_table(report, dataset.name))
    if report.missing_gold:
        console.print(cell(f"{len(report.missing_gold)} gold id(s) are not in the store, e.g. "
                           f"{report.missing_gold[0]!r}", "yellow"))


def _bar(show: bool) -> Progress:
    return Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), disable=not show)


def _table(report: EvalReport, title: str) -> Table:
    """One row per strategy; the best value of each quality column in bold."""
    table = Table(title=escape(f"{title}: {report.queries:,} queries, k={report.k}"),
                  title_justify="left")
    headers = [f"recall@{report.k}", "MRR", f"nDCG@{report.ndcg_cutoff}", "citation"]
    for header in ("strategy", *headers, "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(header, justify="left" if header == "strategy" else "right")
    rows = [list(r.metrics.values()) for r in report.strategies]
    best = [max((v for v in column if v is not None), default=None) for column in zip(*rows,
                                                                                      strict=True)]
    for r, values in zip(report.strategies, rows, strict=True):
        quality = ["—" if v is None else (f"[bold]{v:.3f}[/]" if v == b else f"{v:.3f}")
                   for v, b in zip(values, best, strict=True)]
        latency = [f"{r.latency_ms[p]:.1f}" for p in ("p50", "p95", "p99")]
        table.add_row(cell(r.strategy, "cyan"), *quality, *latency)
    return table
