"""The drop folder, with real files, real watchdog events and the real local models."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import loomdb
from loomdb.ingest.pipeline import IngestResult
from loomdb.ingest.watcher import DropFolder

pytestmark = pytest.mark.ml


@pytest.fixture
def folder(enriched_db: loomdb.Database,
           tmp_path: Path) -> Iterator[tuple[DropFolder, list[IngestResult]]]:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "already.txt").write_text("Alice met Bob in Paris.")
    results: list[IngestResult] = []
    drop = enriched_db.watch(inbox, settle=0.3, max_bytes=10_000, on_result=results.append)
    drop.start()
    yield drop, results
    drop.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def by_name(results: list[IngestResult]) -> dict[str, IngestResult]:
    return {Path(r.source).name: r for r in results}


def test_files_are_ingested_once_settled_and_errors_do_not_stop_it(
        folder: tuple[DropFolder, list[IngestResult]], tmp_path: Path) -> None:
    drop, results = folder
    wait_for(lambda: "already.txt" in by_name(results))  # present at start
    inbox = drop.root
    growing = inbox / "growing.md"
    with growing.open("w") as handle:  # written in pieces: must not be read half-written
        for part in ("# Notes\n\n", "Carol flew to Tokyo. ", "Dave stayed in Berlin.\n"):
            handle.write(part)
            handle.flush()
            time.sleep(0.1)
    (inbox / "big.txt").write_text("x" * 20_000)
    (inbox / "bad.html").write_bytes(b"\xff\xfe\x00garbage\x00")
    outside = tmp_path / "secret.txt"
    outside.write_text("the password is hunter2")
    os.symlink(outside, inbox / "link.txt")
    (inbox / "ignored.bin").write_bytes(b"\x00")
    wait_for(lambda: {"growing.md", "big.txt", "link.txt"} <= set(by_name(results)))
    found = by_name(results)
    assert found["growing.md"].status == "added"
    assert "Dave stayed in Berlin" in " ".join(
        n.text or "" for n in drop.db.list_nodes(kind="chunk"))
    assert found["big.txt"].error is not None and found["big.txt"].error.code == "limit_exceeded"
    assert found["link.txt"].error is not None and "symbolic" in found["link.txt"].error.message
    assert "ignored.bin" not in found
    assert "hunter2" not in " ".join(n.text or "" for n in drop.db.list_nodes(kind="chunk"))
    assert [r.status for r in results if Path(r.source).name == "growing.md"] == ["added"]


def test_a_deleted_file_takes_its_document_with_it(
        folder: tuple[DropFolder, list[IngestResult]]) -> None:
    drop, results = folder
    wait_for(lambda: "already.txt" in by_name(results))
    assert drop.db.count(kind="document") == 1
    (drop.root / "already.txt").unlink()
    wait_for(lambda: any(r.status == "deleted" for r in results))
    assert drop.db.count(kind="document") == 0 and drop.db.count(kind="chunk") == 0
