"""``loomdb migrate``: the thin command over loomdb.interchange.migrate."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import assert_error, ok, run
from tests.interchange.test_migrate import fill, open_db


def test_migrate_prints_counts_checks_and_writes_the_report(tmp_path: Path) -> None:
    with open_db(tmp_path / "src") as db:
        fill(db, n=10)
    dry = ok("migrate", tmp_path / "src", tmp_path / "dst", "--dry-run").stdout
    assert "dry run" in dry and "destination: new store" in dry and not (tmp_path / "dst").exists()
    out = ok("migrate", tmp_path / "src", tmp_path / "dst", "--batch", "3",
             "--report", tmp_path / "r.json").stdout
    assert "copying" in out and "validating" in out and "vector_search" in out and "ok" in out
    assert json.loads((tmp_path / "r.json").read_text())["copied"]["nodes"] == 20
    again = json.loads(ok("migrate", tmp_path / "src", tmp_path / "dst", "--validate-only",
                          "--json").stdout)
    assert again["ok"] and again["mode"] == "validate" and "copying" not in str(again)
    assert_error(run("migrate", tmp_path / "src", tmp_path / "dst"), "conflict")


def test_migrate_exits_1_when_a_check_fails(tmp_path: Path) -> None:
    with open_db(tmp_path / "src") as db:
        fill(db, n=10)
    ok("migrate", tmp_path / "src", tmp_path / "dst", "--json")
    with open_db(tmp_path / "dst") as db:
        db.tenant("t2").update_node("日本-0", text="tampered")
    result = run("migrate", tmp_path / "src", tmp_path / "dst", "--validate-only")
    assert result.exit_code == 1 and "FAILED" in result.stdout and "日本-0" in result.stdout
