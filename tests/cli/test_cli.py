"""The loomdb CLI end to end on real stores in tmp_path (typer's CliRunner, one subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from loomdb.cli import app

runner = CliRunner()


def run(*args: str | Path) -> Result:
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "120"})


def ok(*args: str | Path) -> Result:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def as_json(*args: str | Path) -> Any:
    return json.loads(ok(*args, "--json").stdout)


def assert_error(result: Result, code: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error [{code}]: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with a small graph: paris <-mentions- c1 -next-> c2 -mentions-> france."""
    path = tmp_path / "store"
    ok("init", path)
    s = ("--store", path)
    ok("add", "c1", "--kind", "chunk", "--text", "Alice met Bob in Paris", *s,
       "--props", '{"lang": "en", "page": 1}', "--source", "notes.md", "--category", "travel")
    ok("add", "c2", "--kind", "chunk", "--text", "Paris is the capital of France", *s,
       "--props", '{"lang": "en", "page": 2}')
    ok("add", "paris", "--kind", "entity", "--text", "Paris", *s)
    ok("add", "france", "--kind", "entity", "--text", "France", *s)
    ok("link", "c1", "paris", "--type", "mentions", *s)
    ok("link", "c1", "c2", "--type", "next", *s)
    ok("link", "c2", "paris", "--type", "mentions", *s)
    ok("link", "c2", "france", "--type", "mentions", "--weight", "0.5", *s)
    return path


def test_init_creates_the_text_space(tmp_path: Path) -> None:
    path = tmp_path / "s"
    result = ok("init", path, "--quantization", "f16", "--dim", "8", "--model", "toy")
    assert "space text" in result.stdout
    spaces = as_json("stats", "--store", path)["spaces"]
    assert spaces == [{"name": "text", "dim": 8, "model": "toy", "metric": "cosine",
                       "quantization": "f16", "storage": "float32"}]


def test_init_twice_is_a_no_op_but_a_different_space_conflicts(tmp_path: Path) -> None:
    path = tmp_path / "s"
    ok("init", path)
    ok("init", path)
    assert_error(run("init", path, "--dim", "3"), "conflict")


def test_get_shows_the_node_and_its_edges(store: Path) -> None:
    result = ok("get", "c1", "--store", store)
    assert "Alice met Bob in Paris" in result.stdout
    assert "mentions" in result.stdout and "travel" in result.stdout
    data = as_json("get", "c2", "--store", store)
    assert data["node"]["props"] == {"lang": "en", "page": 2}
    assert {(e["type"], e["dst"]) for e in data["out"]} == {("mentions", "paris"),
                                                            ("mentions", "france")}
    assert [(e["type"], e["src"]) for e in data["in"]] == [("next", "c1")]


def test_search_text_with_filter_and_kind(store: Path) -> None:
    hits = as_json("search", "Paris", "--mode", "text", "--store", store)["text"]
    assert {h["id"] for h in hits} == {"c1", "c2", "paris"}
    where = '{"props.page": {"$gte": 2}}'
    hits = as_json("search", "Paris", "--mode", "text", "--where", where, "--store", store)
    assert [h["id"] for h in hits["text"]] == ["c2"]
    hits = as_json("search", "Paris", "--mode", "text", "--kind", "entity", "--store", store)
    assert [h["id"] for h in hits["text"]] == ["paris"]
    assert "Alice met Bob" in ok("search", "Alice", "--mode", "text", "--store", store).stdout


def test_neighbors_by_direction_and_type(store: Path) -> None:
    out = as_json("neighbors", "c2", "--store", store)
    assert [n["node"]["id"] for n in out] == ["paris", "france"]
    both = as_json("neighbors", "c2", "--direction", "both", "--type", "next", "--store", store)
    assert [n["node"]["id"] for n in both] == ["c1"]
    incoming = ok("neighbors", "paris", "--direction", "in", "--store", store).stdout
    assert "c1" in incoming and "c2" in incoming


def test_path_plain_weighted_and_missing(store: Path) -> None:
    found = as_json("path", "c1", "france", "--store", store)
    assert [n["id"] for n in found["nodes"]] == ["c1", "c2", "france"]
    assert [e["type"] for e in found["edges"]] == ["next", "mentions"]
    assert found["cost"] == 1.5
    shown = ok("path", "paris", "france", "--direction", "both", "--store", store).stdout
    assert "<-[mentions]-" in shown and "-[mentions]->" in shown
    assert as_json("path", "c1", "france", "--weighted", "--store", store)["cost"] == 1.5
    assert_error(run("path", "france", "c1", "--store", store), "not_found")


def test_stats_reindex_and_check(store: Path) -> None:
    stats = as_json("stats", "--store", store)
    assert stats["nodes"] == {"chunk": 2, "entity": 2}
    assert stats["edges"] == {"mentions": 3, "next": 1}
    assert "chunk" in ok("stats", "--store", store).stdout
    ok("reindex", "--store", store)
    assert as_json("check", "--store", store) == {"ok": True, "problems": []}


def test_tenants_are_isolated(store: Path) -> None:
    ok("add", "secret", "--text", "only in t1", "--tenant", "t1", "--store", store)
    assert as_json("get", "secret", "--tenant", "t1", "--store", store)["node"]["tenant"] == "t1"
    assert_error(run("get", "secret", "--store", store), "not_found")
    assert as_json("stats", "--tenant", "t1", "--store", store)["nodes"] == {"concept": 1}


def test_store_defaults_to_the_environment(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOMDB_STORE", str(store))
    assert as_json("stats")["nodes"]["chunk"] == 2


def test_unknown_id_is_one_error_line(store: Path) -> None:
    assert_error(run("get", "nope", "--store", store), "not_found")
    assert_error(run("neighbors", "nope", "--store", store), "not_found")


def test_bad_where_json_is_invalid_filter(store: Path) -> None:
    assert_error(run("search", "x", "--mode", "text", "--where", "{bad", "--store", store),
                 "invalid_filter")
    assert_error(run("search", "x", "--mode", "text", "--where", '{"nope": 1}',
                     "--store", store), "invalid_filter")


def test_bad_input_and_conflicts(store: Path) -> None:
    assert_error(run("add", "x", "--props", "[1]", "--store", store), "invalid_input")
    assert_error(run("add", "c1", "--store", store), "conflict")
    assert_error(run("link", "c1", "ghost", "--store", store), "not_found")
    assert_error(run("add", "y", "--embed", "--store", store), "invalid_input")


def test_missing_store_and_usage_errors(tmp_path: Path) -> None:
    assert_error(run("stats", "--store", tmp_path / "none"), "not_found")
    assert not (tmp_path / "none").exists()
    assert run("neighbors", "x", "--direction", "sideways", "--store", tmp_path).exit_code == 2
    assert run("frobnicate").exit_code == 2


def test_export_import_round_trip(store: Path, tmp_path: Path) -> None:
    exported = as_json("export", tmp_path / "dump", "--store", store)
    assert exported
    copy = tmp_path / "copy"
    ok("init", copy)
    ok("import", tmp_path / "dump", "--store", copy)
    original, restored = as_json("stats", "--store", store), as_json("stats", "--store", copy)
    for what in ("nodes", "edges", "vectors"):
        assert restored[what] == original[what]
    assert as_json("get", "c1", "--store", copy)["node"]["props"] == {"lang": "en", "page": 1}


@pytest.mark.ml
def test_add_with_embed_then_vector_and_both_search(tmp_path: Path) -> None:
    path = tmp_path / "fresh"
    ok("init", path, "--no-space")
    ok("add", "a", "--text", "Alice met Bob in Paris", "--embed", "--store", path)
    ok("add", "b", "--text", "The stock market fell sharply today", "--embed", "--store", path)
    stats = as_json("stats", "--store", path)
    assert stats["vectors"] == {"text": 2}
    assert stats["spaces"][0]["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    found = as_json("search", "two friends meet in France", "--k", "2", "--store", path)
    assert [h["id"] for h in found["vector"]] == ["a", "b"]
    both = as_json("search", "Paris", "--mode", "both", "--store", path)
    assert set(both) == {"vector", "text"} and both["text"][0]["id"] == "a"


@pytest.mark.ml
def test_embed_into_a_space_of_another_model_fails(tmp_path: Path) -> None:
    path = tmp_path / "s"
    ok("init", path, "--model", "other-model")
    assert_error(run("add", "a", "--text", "hi", "--embed", "--store", path), "model_mismatch")
    assert_error(run("get", "a", "--store", path), "not_found")


def _loomdb_script() -> str | None:
    beside = Path(sys.executable).with_name("loomdb")
    return str(beside) if beside.exists() else shutil.which("loomdb")


def test_installed_console_script(tmp_path: Path) -> None:
    script = _loomdb_script()
    assert script is not None, "the loomdb console script is not installed (pip install -e .)"
    env = {**os.environ, "LOOMDB_STORE": str(tmp_path / "s")}
    subprocess.run([script, "init"], env=env, check=True, capture_output=True, timeout=120)
    done = subprocess.run([script, "get", "missing"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("error [not_found]: ") and "'missing'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_every_command_takes_a_postgresql_url(postgres_url: str) -> None:
    """--store keeps a URL as it is (a path would fold its //): init, add, get, stats."""
    ok("init", postgres_url, "--dim", "4", "--model", "m")
    ok("add", "n1", "--kind", "chunk", "--text", "Radium glows", "--store", postgres_url)
    got = as_json("get", "n1", "--store", postgres_url)
    assert (got["node"]["id"], got["node"]["text"]) == ("n1", "Radium glows")
    stats = as_json("stats", "--store", postgres_url)
    assert stats["nodes"] == {"chunk": 1} and stats["spaces"][0]["dim"] == 4
    assert_error(run("add", "n1", "--store", postgres_url), "conflict")


def test_loomdb_store_may_hold_a_postgresql_url(postgres_url: str) -> None:
    ok("init", postgres_url, "--dim", "4", "--model", "m")
    ok("add", "n1", "--kind", "chunk", "--text", "Radium glows", "--store", postgres_url)
    result = runner.invoke(app, ["stats", "--json"],
                           env={"COLUMNS": "120", "LOOMDB_STORE": postgres_url})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["nodes"] == {"chunk": 1}


def test_an_unknown_store_url_is_refused() -> None:
    assert_error(run("stats", "--store", "redis://localhost/0"), "invalid_input")
