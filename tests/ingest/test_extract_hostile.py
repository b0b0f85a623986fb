"""Hostile and broken input: each case is one clear LoomError naming the file, and the calling
process (this one) carries on, including when the parsing child crashes or runs out of time or
memory. PDFs are built here, byte by byte, so these tests need no shared data."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import zlib
from pathlib import Path

import pytest

from loomdb.errors import (
    ExtractionFailed,
    InvalidInput,
    LimitExceeded,
    LoomError,
    NotFound,
    UnsupportedFormat,
)
from loomdb.ingest.extract import ExtractLimits, extract
from loomdb.ingest.extract.pool import WorkerPool


def make_pdf(content: bytes = b"BT /F1 24 Tf 72 720 Td (Hello world) Tj ET", *,
             kids: int = 1, count: int | None = None, filters: bytes = b"") -> bytes:
    """A minimal valid PDF: one page object listed ``kids`` times, a declared ``count``."""
    page_refs = " ".join(["3 0 R"] * kids)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{page_refs}] /Count {count or kids} >>".encode(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d %s>>\nstream\n" % (len(content), filters) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def slow_pdf(path: Path, pages: int = 400) -> Path:
    """Many pages of text, so that parsing takes a while (pypdf re-reads each listed page)."""
    lines = b"".join(b"BT /F1 9 Tf 40 %d Td (line %d of a long page of words) Tj ET\n" % (
        800 - 10 * i, i) for i in range(70))
    path.write_bytes(make_pdf(lines, kids=pages))
    return path


def still_works(tmp_path: Path) -> None:
    """The parent (and the worker pool) still extract a good file after the hostile one."""
    good = tmp_path / "good.pdf"
    good.write_bytes(make_pdf())
    assert extract(good).text == "Hello world"


def test_minimal_pdf_from_path_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "hello.pdf"
    path.write_bytes(make_pdf())
    doc = extract(path)
    assert (doc.text, doc.parser, doc.source) == ("Hello world", "pypdf", str(path))
    from_bytes = extract(make_pdf())
    assert from_bytes.source == "<bytes>" and from_bytes.text == "Hello world"


@pytest.mark.parametrize(
    ("name", "data", "error", "words"),
    [
        ("truncated.pdf", make_pdf()[:300], ExtractionFailed, "not a readable PDF"),
        ("random.pdf", b"%PDF-1.7\n" + random.Random(7).randbytes(40_000), ExtractionFailed,
         "not a readable PDF"),
        ("empty.pdf", b"", ExtractionFailed, "empty"),
        ("no-pages.pdf", make_pdf(kids=0), ExtractionFailed, "no pages"),
        ("many-pages.pdf", make_pdf(kids=3000, count=10**9), LimitExceeded, "max_pages"),
        ("data.bin", b"\x00\x01binary", UnsupportedFormat, "extension '.bin'"),
    ],
)
def test_broken_files_give_one_clear_error(tmp_path: Path, name: str, data: bytes,
                                           error: type[LoomError], words: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(error, match=words) as info:
        extract(path)
    assert type(info.value) is error and name in info.value.message
    still_works(tmp_path)


def test_declared_page_count_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "liar.pdf"
    path.write_bytes(make_pdf(count=10**9))
    assert len(extract(path).pages) == 1


def test_size_limit_is_checked_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.pdf"
    path.write_bytes(make_pdf())
    with pytest.raises(LimitExceeded, match="max_bytes=100"):
        extract(path, limits=ExtractLimits(max_bytes=100))
    with pytest.raises(LimitExceeded, match="<bytes>"):
        extract(make_pdf(), limits=ExtractLimits(max_bytes=100))


def test_page_limit(tmp_path: Path) -> None:
    path = tmp_path / "ten.pdf"
    path.write_bytes(make_pdf(kids=10))
    with pytest.raises(LimitExceeded, match="10 pages exceeds max_pages=5"):
        extract(path, limits=ExtractLimits(max_pages=5))


def test_timeout_kills_the_parse(tmp_path: Path) -> None:
    path = slow_pdf(tmp_path / "slow.pdf")
    start = time.monotonic()
    with pytest.raises(LimitExceeded, match=r"timeout=0.2 s"):
        extract(path, parser="pypdf", limits=ExtractLimits(timeout=0.2))
    assert time.monotonic() - start < 5
    still_works(tmp_path)


def test_memory_limit_stops_a_decompression_bomb(tmp_path: Path) -> None:
    packer = zlib.compressobj(9)
    body = b"BT /F1 12 Tf 72 720 Td (bomb) Tj ET\n"
    stream = packer.compress(body) + packer.compress(b" " * 200 * 2**20) + packer.flush()
    path = tmp_path / "bomb.pdf"
    path.write_bytes(make_pdf(stream, filters=b"/Filter /FlateDecode "))
    with pytest.raises(LimitExceeded, match="max_memory=157,286,400"):
        extract(path, limits=ExtractLimits(max_memory=150 * 2**20))
    still_works(tmp_path)


def _children_of(pid: int) -> list[int]:
    """Child processes of ``pid``, whichever of its threads started them."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_crashing_child_is_a_clear_error(tmp_path: Path) -> None:
    """SIGSEGV the parsing child mid-parse, as a hostile file exploiting a parser would."""
    pool = WorkerPool(size=1)
    path = slow_pdf(tmp_path / "victim.pdf", pages=1500)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            extract_with(pool, path)
        except LoomError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        os.kill(_wait_for_parsing_child(), signal.SIGSEGV)
    finally:
        thread.join(timeout=60)
        pool.close()
    assert len(outcome) == 1 and isinstance(outcome[0], ExtractionFailed)
    assert "crashed (SIGSEGV)" in outcome[0].message and "victim.pdf" in outcome[0].message
    still_works(tmp_path)


def extract_with(pool: WorkerPool, path: Path) -> None:
    from loomdb.ingest.extract.pdf import extract_pdf

    extract_pdf(str(path), str(path), password=None, parser="pypdf",
                limits=ExtractLimits(timeout=60), pool=pool)


def _wait_for_parsing_child() -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for server in _children_of(os.getpid()):
            if children := _children_of(server):
                return children[0]
        time.sleep(0.02)
    raise AssertionError("no parsing child appeared")


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda p: p, InvalidInput, "is a directory"),
        (lambda p: p / "missing.pdf", NotFound, "no such file"),
    ],
)
def test_paths_that_are_not_files(tmp_path: Path, make: object, error: type[LoomError],
                                  words: str) -> None:
    assert callable(make)
    with pytest.raises(error, match=words):
        extract(make(tmp_path))


def test_limits_must_be_positive() -> None:
    with pytest.raises(InvalidInput, match=r"ExtractLimits\.timeout"):
        ExtractLimits(timeout=0)
    with pytest.raises(InvalidInput, match=r"ExtractLimits\.max_pages"):
        ExtractLimits(max_pages=-1)


def test_unknown_parser_and_media_type(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="parser 'tesseract'"):
        extract(make_pdf(), parser="tesseract")
    with pytest.raises(UnsupportedFormat, match="application/msword"):
        extract(b"hello", media_type="application/msword")
    with pytest.raises(InvalidInput, match="cannot read a PDF"):
        extract(make_pdf(), parser="html")
