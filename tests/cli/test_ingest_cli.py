"""``loomdb ingest`` and ``loomdb weaver`` end to end, with the real local models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import ok, run

pytestmark = pytest.mark.ml


def test_ingest_reports_each_file_and_enriches(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "paris.md").write_text("# Paris\n\nAlice met Bob in Paris near the Louvre.\n")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf")
    (docs / "skip.bin").write_bytes(b"\x00")  # not a supported suffix: not picked up
    store = tmp_path / "kb"
    result = run("ingest", docs, "--store", store, "--json")
    assert result.exit_code == 1  # one file failed
    rows = {Path(r["source"]).name: r for r in json.loads(result.stdout)}
    assert set(rows) == {"paris.md", "broken.pdf"}
    assert rows["paris.md"]["status"] == "added" and rows["paris.md"]["chunks"] == 1
    assert rows["broken.pdf"]["status"] == "failed" and rows["broken.pdf"]["error"]["code"]
    status = json.loads(ok("weaver", "--store", store, "--json").stdout)["status"]
    assert status["queued"] == 0 and status["by_task"]["embed"]["done"] == 1
    again = json.loads(run("ingest", docs / "paris.md", "--store", store, "--json").stdout)
    assert again[0]["status"] == "unchanged"
    table = ok("ingest", docs / "paris.md", "--store", store).stdout
    assert "unchanged" in table and "paris.md" in table


def test_weaver_runs_queued_jobs(tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("Carol flew from Berlin to Tokyo with Dave.")
    store = tmp_path / "kb"
    ok("ingest", note, "--store", store, "--no-wait")
    queued = json.loads(ok("weaver", "--store", store, "--json").stdout)["status"]["queued"]
    assert queued == 2  # the chunk's embedding and the document's summary
    out = ok("weaver", "--run", "--activity", "sleep", "--store", store).stdout
    assert "embed" in out and "entities" in out
    found = json.loads(ok("search", "Carol", "--mode", "text", "--store", store, "--json").stdout)
    assert found


def test_query_answers_with_citations_and_explains(tmp_path: Path) -> None:
    note = tmp_path / "curie.md"
    note.write_text("# Curie\n\nMarie Curie isolated radium in Paris in 1902.\n")
    store = tmp_path / "kb"
    ok("ingest", note, "--store", store)
    out = json.loads(ok("query", "who isolated radium", "--kind", "chunk", "--explain",
                        "--store", store, "--json").stdout)
    assert out["hits"][0]["citation"]["page"] == 1
    assert out["plan"]["strategy"] in ("hybrid-parallel", "hybrid-sequential")
    assert all(step["actual_ms"] is not None for step in out["plan"]["steps"])
    table = ok("query", "radium", "--kind", "chunk", "--explain", "--store", store).stdout
    assert "strategy:" in table and "curie" in table
    bad = run("query", "radium", "--strategy", "telepathy", "--store", store)
    assert bad.exit_code == 1 and "invalid_input" in bad.stderr
