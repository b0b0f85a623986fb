"""Plain text, Markdown and HTML extraction, media type detection and text normalisation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loomdb.errors import ExtractionFailed, InvalidInput, LimitExceeded, UnsupportedFormat
from loomdb.ingest import extract as extract_package
from loomdb.ingest.extract import ExtractLimits, extract, extract_text
from loomdb.ingest.extract.base import build_document
from loomdb.ingest.extract.normalize import clean_text, dehyphenate, normalize_pdf_page
from loomdb.ingest.extract.tables import markdown_table

PAGE = """<!DOCTYPE html>
<html><head><title> Quarterly   report </title><style>p { color: red }</style>
<script>document.write("tracking")</script></head>
<body><nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<h1>Sales</h1><p>Revenue grew
   by <b>12%</b> this quarter.<br>Costs fell.</p>
<ul><li>North</li><li><p>South</p></li></ul>
<table><tr><th>Region</th><th>Sales</th></tr><tr><td>North</td><td>1,200</td></tr>
<tr><td colspan="2">Total 2,000</td></tr></table>
<pre>def f(x):
    return x | 1</pre>
<noscript>Enable JavaScript</noscript><template><p>hidden</p></template>
<!-- a comment --><footer>Copyright 2024</footer></body></html>"""


def test_public_names() -> None:
    assert extract_package.__all__ == [
        "ExtractLimits", "ExtractedDocument", "Page", "extract", "extract_text"]


def test_plain_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"\xef\xbb\xbfline one\r\nline two\x00\r\n\r\n\r\n\r\nafter")
    doc = extract(path)
    assert (doc.media_type, doc.parser, doc.title, doc.source) == (
        "text/plain", "text", None, str(path))
    assert doc.text == "line one\nline two\n\nafter" and len(doc.pages) == 1
    assert doc.pages[0].number == 1 and doc.pages[0].start == 0


@pytest.mark.parametrize("suffix", [".txt", ".text", ".log", ".md", ".markdown"])
def test_extensions(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"file{suffix}"
    path.write_text("# Heading\n\nbody")
    doc = extract(path)
    markdown = suffix in (".md", ".markdown")
    assert doc.media_type == ("text/markdown" if markdown else "text/plain")
    assert doc.title == ("Heading" if markdown else None)


def test_markdown_stays_markdown_and_titles_skip_code(tmp_path: Path) -> None:
    text = "```\n# not a title\n```\n\n## Intro\n\n# Real Title #\n\n| a | b |\n|---|---|\n"
    doc = extract_text(text, media_type="text/markdown")
    assert doc.title == "Real Title" and doc.text == text.strip("\n") and doc.parser == "markdown"
    assert extract_text("no heading", media_type="text/markdown").title is None
    assert extract_text("# X", media_type="text/markdown", title="Given").title == "Given"


def test_legacy_encodings_are_guessed(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    sentence = "Les élèves étudièrent à l'école près du théâtre, où l'été était très chaud. "
    path.write_bytes((sentence * 20).encode("cp1252"))
    assert extract(path).text.startswith("Les élèves étudièrent à l'école")
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes(("Grüße aus Köln. " * 30).encode("utf-16"))
    assert extract(utf16).text.startswith("Grüße aus Köln.")


def test_binary_content_under_a_text_name(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(bytes(range(32)) * 200)
    with pytest.raises(ExtractionFailed, match="binary"):
        extract(path)


def test_empty_text_file_warns(tmp_path: Path) -> None:
    path = tmp_path / "empty.md"
    path.write_bytes(b"")
    doc = extract(path)
    assert doc.text == "" and doc.warnings == ("the file is empty",) and len(doc.pages) == 1


def test_html(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(PAGE)
    doc = extract(path)
    assert (doc.title, doc.parser, doc.media_type) == ("Quarterly report", "html", "text/html")
    assert doc.text == (
        "# Sales\n\nRevenue grew by 12% this quarter.\nCosts fell.\n\n- North\n\n- South\n\n"
        "| Region | Sales |\n| --- | --- |\n| North | 1,200 |\n| Total 2,000 |  |\n\n"
        "```\ndef f(x):\n    return x | 1\n```"
    )
    for dropped in ("tracking", "color", "Home", "Enable JavaScript", "hidden", "Copyright",
                    "comment"):
        assert dropped not in doc.text
    assert doc.metadata["tables"] == 1


def test_html_title_falls_back_to_h1_and_survives_deep_nesting() -> None:
    assert extract_text("<h1>Only <i>heading</i></h1><p>x</p>", media_type="text/html").title \
        == "Only heading"
    deep = "<div>" * 5000 + "deep text" + "</div>" * 5000
    assert "deep text" in extract(deep.encode(), media_type="text/html").text


def test_html_bytes_use_the_declared_charset() -> None:
    markup = '<meta charset="iso-8859-1"><p>café crème</p>'.encode("latin-1")
    assert extract(markup, media_type="text/html").text == "café crème"


def test_detection_by_magic_and_errors(tmp_path: Path) -> None:
    misnamed = tmp_path / "report.txt"
    misnamed.write_bytes(b"%PDF-1.4 but truncated")
    with pytest.raises(ExtractionFailed, match=r"report\.txt: not a readable PDF"):
        extract(misnamed)
    note = tmp_path / "about-pdf.md"
    note.write_text("# PDF headers\n\nEvery PDF starts with `%PDF-1.7` or similar.")
    assert extract(note).media_type == "text/markdown"
    with pytest.raises(UnsupportedFormat, match="no known extension"):
        extract(b"just bytes")
    assert extract(b"just bytes", media_type="text/plain").text == "just bytes"
    docx = tmp_path / "letter.docx"
    docx.write_bytes(b"PK\x03\x04")
    with pytest.raises(UnsupportedFormat, match=r"letter.docx: extension '.docx'"):
        extract(docx)


def test_text_limits_and_parser_checks(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("x" * 1000)
    with pytest.raises(LimitExceeded, match="1,000 bytes exceeds max_bytes=999"):
        extract(path, limits=ExtractLimits(max_bytes=999))
    with pytest.raises(InvalidInput, match="cannot read text/plain"):
        extract(path, parser="pypdf")
    with pytest.raises(InvalidInput, match="media_type"):
        extract_text("x", media_type="application/pdf")


def test_normalize_pdf_page() -> None:
    raw = "  Of\ufb01ce  hours:\t9\u00a0to  5 \r\n\x0c\n\n\nNext\x07 line\ud800"
    assert normalize_pdf_page(raw) == "Office hours: 9 to 5\n\nNext line"
    assert clean_text("a\r\nb\rc\x00") == "a\nb\nc"


def test_dehyphenate_only_where_the_document_shows_the_word() -> None:
    pages = ["The exam-\nple is an example.", "A well-\nknown and well-known fact.",
             "A state-\nment of Anglo-\nSaxon words."]
    assert dehyphenate(pages) == [
        "The example\nis an example.", "A well-known\nand well-known fact.",
        "A state-\nment of Anglo-\nSaxon words."]


def test_markdown_table_rendering() -> None:
    rows = [["Name", None, "Qty"], ["a|b", None, "1\n2"], ["c"]]
    assert markdown_table(rows) == "| Name | Qty |\n| --- | --- |\n| a\\|b | 1 2 |\n| c |  |"


@given(st.lists(st.text(max_size=50), min_size=1, max_size=8))
def test_page_offsets_map_back(texts: list[str]) -> None:
    doc = build_document("<text>", "text/plain", texts, parser="text")
    assert [p.number for p in doc.pages] == list(range(1, len(texts) + 1))
    for page in doc.pages:
        assert doc.text[page.start : page.start + len(page.text)] == page.text
        assert doc.page_at(page.start) == page or page.text == ""
