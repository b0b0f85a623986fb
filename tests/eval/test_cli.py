"""``loomdb eval`` end to end: tables, JSON, errors, and the default strategies with MiniLM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import loomdb
from loomdb.cli import app

runner = CliRunner()


def run(*args: str | Path) -> Result:
    return runner.invoke(app, ["eval", *(str(a) for a in args)], env={"COLUMNS": "140"})


def write_golden(path: Path, *items: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Chunks without vectors (BM25 only), citing doc-a and doc-b."""
    path = tmp_path / "store"
    with loomdb.open(path, ml=None, weaver=False) as db:
        db.add_nodes([{"id": f"c{i}", "kind": "chunk", "text": text,
                       "props": {"document": "doc-a" if i < 2 else "doc-b", "page": 1}}
                      for i, text in enumerate(["radium glows in the dark",
                                                "polonium was named after Poland",
                                                "the double helix of DNA",
                                                "penicillin kills bacteria"])])
    return path


def test_bm25_table_and_json(store: Path, tmp_path: Path) -> None:
    golden = write_golden(tmp_path / "golden.jsonl",
                          {"query": "radium glows", "gold_ids": ["c0"]},
                          {"query": "DNA helix", "gold": [{"document": "doc-b"}]},
                          {"query": "bacteria", "gold_ids": ["c3", "gone"]})
    shown = run(golden, "--strategy", "bm25", "--store", store)
    assert shown.exit_code == 0, shown.output
    assert "golden.jsonl: 3 queries, k=10" in shown.stdout
    assert "bm25" in shown.stdout and "nDCG@10" in shown.stdout and "p99 ms" in shown.stdout
    assert "1 gold id(s) are not in the store" in shown.stdout
    data = json.loads(run(golden, "--strategy", "bm25", "-k", "2", "--store", store,
                          "--json").stdout)
    assert (data["k"], data["queries"], data["missing_gold"]) == (2, 3, ["gone"])
    [bm25] = data["strategies"]
    assert bm25["strategy"] == "bm25" and bm25["plans"] == {"lexical-only": 3}
    assert bm25["mrr"] == 1.0 and bm25["citation_accuracy"] == 1.0
    assert bm25["recall@2"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert set(bm25["latency_ms"]) == {"p50", "p95", "p99"}


def assert_error(result: Result, code: str, text: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error [{code}]: ") and text in result.stderr
    assert "Traceback" not in result.output


def test_errors_are_one_line(store: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "ok", "gold_ids": ["c0"]}\n{"query": "no gold"}\n')
    assert_error(run(bad, "--store", store), "invalid_input", "line 2: ")
    assert_error(run(tmp_path / "absent.jsonl", "--store", store), "not_found", "no golden")
    good = write_golden(tmp_path / "good.jsonl", {"query": "radium", "gold_ids": ["c0"]})
    assert_error(run(good, "--strategy", "oracle", "--store", store), "invalid_input",
                 "unknown strategy 'oracle'")
    assert_error(run(good, "--store", tmp_path / "nowhere"), "not_found", "no loomdb store")
    filtered = write_golden(tmp_path / "filter.jsonl",
                            {"query": "radium", "gold_ids": ["c0"], "where": {"$bad": 1}})
    assert_error(run(filtered, "--store", store), "invalid_filter", "line 1: ")


@pytest.mark.ml
def test_default_strategies_with_minilm(tmp_path: Path) -> None:
    from tests.enrich_fixtures import local_provider

    path = tmp_path / "kb"
    with loomdb.open(path, ml=local_provider(), weaver=False) as db:
        db.ingest(text="Marie Curie discovered radium.\n\nShe was born in Warsaw.", id="curie")
        db.ingest(text="Alexander Fleming discovered penicillin in London.", id="fleming")
        assert db.wait_for_enrichment()
    golden = write_golden(tmp_path / "golden.jsonl",
                          {"query": "who found radium", "gold": [{"document": "curie"}]},
                          {"query": "the first antibiotic", "gold": [{"document": "fleming"}]})
    result = run(golden, "--store", path, "--json")
    assert result.exit_code == 0, result.output
    reports = {r["strategy"]: r for r in json.loads(result.stdout)["strategies"]}
    assert list(reports) == ["dense", "bm25", "hybrid", "hybrid+graph"]
    assert reports["dense"]["recall@10"] == 1.0 and reports["hybrid"]["recall@10"] == 1.0
