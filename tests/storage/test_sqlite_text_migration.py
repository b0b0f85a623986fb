"""Schema v4 (per-tenant text statistics) upgrades a v3 store in place, and a read-only v3
store is still searched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from loomdb.config import StoreSettings
from loomdb.model import Node
from loomdb.storage.sqlite import SqliteBackend
from loomdb.storage.sqlite.schema import MIGRATIONS


def _v3_store(path: Path) -> None:
    path.mkdir()
    conn = sqlite3.connect(path / "loom.db", isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:3], start=1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    rows = [("a", f"a{i}", "note", f"radium note {i} " + "word " * (i % 300), 0.0, 0.0)
            for i in range(200)] + [("b", "b1", "note", "radium sample", 0.0, 0.0),
                                    ("b", "b2", "note", None, 0.0, 0.0)]
    conn.executemany("INSERT INTO nodes (tenant, id, kind, text, created, updated) "
                     "VALUES (?,?,?,?,?,?)", rows)
    conn.close()


def test_a_v3_store_gets_its_text_totals_on_opening(tmp_path: Path) -> None:
    _v3_store(tmp_path / "s")
    backend = SqliteBackend(tmp_path / "s", StoreSettings())
    try:
        tokens_a = sum(3 + i % 300 for i in range(200))
        assert backend.text_totals("a") == (200, tokens_a)
        assert backend.text_totals("b") == (1, 2)
        assert backend.text_totals("nobody") == (0, 0)
        backend.put_nodes("b", [Node("b3", text="polonium radium sample")], "error")
        backend.update_node("b", "b2", {"text": "radium"})
        backend.delete_nodes("a", ["a0"])
        assert backend.text_totals("b") == (3, 6)
        assert backend.text_totals("a") == (199, tokens_a - 3)
        assert [n.id for n, _ in backend.text_search("b", "radium", 5, None)] == \
            ["b2", "b1", "b3"]
    finally:
        backend.close()


def test_a_read_only_v3_store_is_searched_over_the_whole_index(tmp_path: Path) -> None:
    _v3_store(tmp_path / "s")
    backend = SqliteBackend(tmp_path / "s", StoreSettings(read_only=True))
    try:
        assert [n.id for n, _ in backend.text_search("b", "radium", 5, None)] == ["b1"]
        assert backend.text_scores("b", "radium", ["b1"], 5)[0][0] == "b1"
    finally:
        backend.close()
