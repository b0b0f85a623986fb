"""Ingestion is bounded: hostile sources are refused with a code before they are read, and
long or huge inputs cost time in proportion to their size, through ``db.ingest``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import loomdb
from loomdb.errors import LimitExceeded, UnsupportedFormat
from loomdb.ingest.extract import ExtractLimits, extract
from loomdb.model import prop_int

pytestmark = pytest.mark.ml

needs_devices = pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")


def refused(db: loomdb.Database, path: Path | str, code: str, **kwargs: object) -> None:
    """``path`` fails in its result with ``code``, within seconds, and nothing is written."""
    seq, started = db.seq, time.monotonic()
    [result] = db.ingest(path, **kwargs)  # type: ignore[arg-type]
    assert result.status == "failed" and result.error is not None
    assert result.error.code == code and str(path) in result.error.message
    assert time.monotonic() - started < 5 and db.seq == seq


@needs_devices
@pytest.mark.timeout(30)
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_devices_are_refused_before_reading(enriched_db: loomdb.Database, device: str) -> None:
    refused(enriched_db, device, "unsupported_format")


@needs_devices
@pytest.mark.timeout(30)
def test_a_symlink_to_a_device_is_a_device(enriched_db: loomdb.Database, tmp_path: Path) -> None:
    link = tmp_path / "notes.txt"
    link.symlink_to("/dev/zero")
    refused(enriched_db, link, "unsupported_format")


@pytest.mark.timeout(30)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_txt_is_refused_without_waiting_for_a_writer(
        enriched_db: loomdb.Database, tmp_path: Path) -> None:
    fifo = tmp_path / "x.txt"
    os.mkfifo(fifo)
    refused(enriched_db, fifo, "unsupported_format")
    with pytest.raises(UnsupportedFormat, match="FIFO"):
        extract(fifo)


@pytest.mark.timeout(30)
def test_a_file_over_max_bytes_is_refused_before_hashing(
        enriched_db: loomdb.Database, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("Alice met Bob in Paris. " * 100)
    refused(enriched_db, big, "limit_exceeded", limits=ExtractLimits(max_bytes=1000))
    with pytest.raises(LimitExceeded, match="max_bytes=1,000"):
        enriched_db.ingest(big, limits=ExtractLimits(max_bytes=1000), strict=True)


@pytest.mark.timeout(60)
def test_special_files_in_a_folder_are_skipped_and_the_rest_ingested(
        enriched_db: loomdb.Database, tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("Alice met Bob in Paris.")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.txt")
    results = enriched_db.ingest(tmp_path)
    assert [(Path(r.source).name, r.status) for r in results] == [("ok.txt", "added")]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("n", [10_000, 40_000, 1_000_000])
def test_a_long_run_without_spaces_ingests_in_linear_time(
        enriched_db: loomdb.Database, n: int) -> None:
    """10,000 "#" took 10 s, 40,000 over four minutes: spaCy's tokenizer is quadratic on it."""
    started = time.monotonic()
    [result] = enriched_db.ingest(text="#" * n)
    assert result.status == "added" and time.monotonic() - started < 30
    chunks = enriched_db.list_nodes(kind="chunk", limit=100_000)
    assert len(chunks) == result.chunks and sum(len(c.text or "") for c in chunks) == n
    assert all((prop_int(c.props, "tokens") or 0) <= 240 for c in chunks)


@pytest.mark.timeout(120)
def test_a_megabyte_of_hash_lines_ingests_in_seconds(
        enriched_db: loomdb.Database, tmp_path: Path) -> None:
    path = tmp_path / "hashes.md"
    path.write_text(("#" * 999 + "\n") * 1000)
    started = time.monotonic()
    [result] = enriched_db.ingest(path)
    assert result.status == "added" and time.monotonic() - started < 30


@pytest.mark.timeout(30)
def test_a_text_over_max_chars_is_refused_before_any_work(enriched_db: loomdb.Database) -> None:
    seq, started = enriched_db.seq, time.monotonic()
    with pytest.raises(LimitExceeded, match="max_chars=10,000,000"):
        enriched_db.ingest(text="Alice met Bob in Paris. " * 2_500_000)  # 60 MB
    with pytest.raises(LimitExceeded, match="<text>: 24 characters of text exceeds max_chars=10"):
        enriched_db.ingest(text="Alice met Bob in Paris. ", limits=ExtractLimits(max_chars=10))
    assert time.monotonic() - started < 5 and enriched_db.seq == seq


@pytest.mark.timeout(30)
def test_files_are_held_to_max_chars_too(enriched_db: loomdb.Database, tmp_path: Path) -> None:
    limits = ExtractLimits(max_chars=100)
    text = tmp_path / "long.md"
    text.write_text("Alice met Bob in Paris. " * 10)
    html = tmp_path / "long.html"
    html.write_text("<p>" + "Alice met Bob in Paris. " * 10 + "</p>")
    refused(enriched_db, text, "limit_exceeded", limits=limits)
    refused(enriched_db, html, "limit_exceeded", limits=limits)
    with pytest.raises(LimitExceeded, match="bytes of text exceed max_chars=100"):
        extract(b"x" * 401, media_type="text/plain", limits=limits)
