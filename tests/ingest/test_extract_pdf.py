"""PDF extraction on the team's 49 real PDFs: each yields text or one specific, clear error.

Every file is extracted once (module fixture, two at a time like the worker pool allows) and the
tests assert per category: scans have no text layer, encrypted files need their password, ruled
tables come out as Markdown tables holding Camelot's cell values, pages keep their numbers, and
right-to-left and Korean text survive. Skipped where the shared data is absent.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from loomdb.config import shared_data_dir
from loomdb.errors import LoomError, NoTextLayer, PasswordRequired
from loomdb.ingest.extract import ExtractedDocument, extract
from loomdb.ingest.extract.router import pymupdf_available

PDFS = shared_data_dir() / "pdfs"
pytestmark = pytest.mark.skipif(
    not PDFS.is_dir(), reason=f"shared PDFs not found at {PDFS} (set LOOMDB_SHARED_DATA)"
)

PASSWORDS = {
    "docling/2206.01062_pg3.pdf": "1234",
    "pypdf_samples/libreoffice-writer-password.pdf": "openpassword",
}
# Scans with no text layer at all. ocrmypdf_scanned/multipage.pdf is not one: its page 4
# carries a (poor) text layer, so it yields that page and a warning for each other page.
IMAGE_ONLY = {
    "docling/ocr_test.pdf",
    *(f"ocrmypdf_scanned/{n}.pdf" for n in
      ("2400dpi", "c02-22", "cardinal", "epson", "jbig2", "linn", "masks", "skew")),
}
# Camelot's lattice (ruled) tables; its CSVs of the stream tables have no rules to find, and
# electoral_roll's CSV glues several fields into one cell.
RULED = ("agstat", "column_span_1", "district_health", "health", "row_span", "twotables_1")

Outcome = ExtractedDocument | LoomError


def _extract(path: Path) -> Outcome:
    key = path.relative_to(PDFS).as_posix()
    try:
        return extract(path, password=PASSWORDS.get(key))
    except LoomError as exc:
        return exc


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    files = sorted(PDFS.glob("*/*.pdf"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_extract, files))
    return {f.relative_to(PDFS).as_posix(): r for f, r in zip(files, results, strict=True)}


def _doc(outcomes: dict[str, Outcome], key: str) -> ExtractedDocument:
    outcome = outcomes[key]
    assert isinstance(outcome, ExtractedDocument), f"{key}: {outcome}"
    return outcome


def _check_offsets(doc: ExtractedDocument) -> None:
    assert [p.number for p in doc.pages] == list(range(1, len(doc.pages) + 1))
    for page in doc.pages:
        assert doc.text[page.start : page.start + len(page.text)] == page.text
    assert "\x00" not in doc.text and all("\n\n\n" not in p.text for p in doc.pages)


def test_every_shared_pdf_has_its_specific_outcome(outcomes: dict[str, Outcome]) -> None:
    assert len(outcomes) == 49
    for key, outcome in outcomes.items():
        if key in IMAGE_ONLY:
            assert isinstance(outcome, NoTextLayer), f"{key}: {outcome!r}"
            assert key.split("/")[1] in outcome.message and "no text layer" in outcome.message
            continue
        doc = _doc(outcomes, key)
        assert doc.text.strip() and doc.media_type == "application/pdf"
        assert doc.parser == doc.metadata["router"]["parser"] and doc.metadata["router"]["reason"]
        assert doc.metadata["page_count"] == len(doc.pages)
        _check_offsets(doc)


def test_partial_text_layer_warns_per_empty_page(outcomes: dict[str, Outcome]) -> None:
    doc = _doc(outcomes, "ocrmypdf_scanned/multipage.pdf")
    assert [bool(p.text) for p in doc.pages] == [False, False, False, True, False, False]
    assert doc.warnings == tuple(f"page {n} has no text layer" for n in (1, 2, 3, 5, 6))


@pytest.mark.parametrize("key", sorted(PASSWORDS))
def test_encrypted_pdf_opens_with_its_password(outcomes: dict[str, Outcome], key: str) -> None:
    doc = _doc(outcomes, key)
    assert doc.metadata["encrypted"] is True and len(doc.text) > 500


@pytest.mark.parametrize("key", sorted(PASSWORDS))
def test_encrypted_pdf_without_or_with_a_wrong_password(key: str) -> None:
    with pytest.raises(PasswordRequired, match="encrypted; pass password="):
        extract(PDFS / key)
    with pytest.raises(PasswordRequired, match="does not open") as info:
        extract(PDFS / key, password="wrong")
    assert info.value.code == "password_required" and key.split("/")[1] in info.value.message


def test_owner_password_only_pdf_opens_without_one(outcomes: dict[str, Outcome]) -> None:
    doc = _doc(outcomes, "camelot_tables/birdisland.pdf")
    assert doc.metadata["encrypted"] is True
    assert "BIRD ISLAND" in doc.text and "BBIIRRDD" not in doc.text  # doubled glyphs removed


def _cells(csv_path: Path) -> list[str]:
    with csv_path.open(newline="") as handle:
        return [" ".join(v.split()) for row in csv.reader(handle) for v in row if v.strip()]


@pytest.mark.parametrize("stem", RULED)
def test_ruled_tables_become_markdown_tables(outcomes: dict[str, Outcome], stem: str) -> None:
    doc = _doc(outcomes, f"camelot_tables/{stem}.pdf")
    assert doc.parser == "pdfplumber" and doc.metadata["tables"] >= 1
    rows = [line for line in doc.text.splitlines() if line.startswith("| ")]
    assert any(re.fullmatch(r"\|( --- \|)+", line) for line in doc.text.splitlines())
    table_text = " ".join(" ".join(row.split()) for row in rows)
    for csv_path in sorted(PDFS.glob(f"camelot_tables/{stem}-data-*.csv")):
        cells = _cells(csv_path)
        found = sum(1 for cell in cells if cell in table_text)
        assert found >= 0.95 * len(cells), f"{csv_path.name}: {found}/{len(cells)} cells"


def test_known_cells_sit_in_one_table_row(outcomes: dict[str, Outcome]) -> None:
    text = _doc(outcomes, "docling/2305.03393v1-pg9.pdf").text
    assert any("OTSL HTML" in row and "0.965 0.969" in row for row in text.splitlines())


def test_page_numbers_and_offsets_on_a_multi_page_file(outcomes: dict[str, Outcome]) -> None:
    doc = _doc(outcomes, "docling/multi_page.pdf")
    assert len(doc.pages) == 5
    assert doc.pages[0].text.startswith("The Evolution of the Word Processor")
    assert doc.pages[2].text.startswith("Specialized Word Processing Tools")
    offset = doc.text.index("Specialized Word Processing Tools")
    assert doc.page_at(offset).number == 3
    assert doc.page_at(doc.pages[4].start + 5).number == 5


def test_long_document_routes_to_pymupdf_when_installed(outcomes: dict[str, Outcome]) -> None:
    doc = _doc(outcomes, "pypdf_samples/GeoTopo-komprimiert.pdf")
    assert len(doc.pages) == 117 and "Metrische Räume" in doc.pages[9].text
    assert doc.parser == ("pymupdf" if pymupdf_available() else "pdfplumber")


def test_right_to_left_and_korean_text(outcomes: dict[str, Outcome]) -> None:
    arabic = _doc(outcomes, "docling/right_to_left_01.pdf")
    assert arabic.parser == "pypdf" and arabic.metadata["router"]["rtl_pages"] == [1]
    assert "تحسين الإنتاجية" in arabic.text
    assert "حَبيبي" in _doc(outcomes, "pypdf_samples/habibi.pdf").text
    korean = _doc(outcomes, "docling/normal_4pages.pdf").text
    assert "코로나-19" in korean and len(re.findall(r"[\uac00-\ud7a3]", korean)) > 1000


def _words(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text.lower()))


def test_text_matches_docling_ground_truth(outcomes: dict[str, Outcome]) -> None:
    """Word F1 against docling's reference Markdown (the benchmark reports the full numbers)."""
    for reference in sorted((PDFS / "docling" / "groundtruth").glob("*.md")):
        got = _words(_doc(outcomes, f"docling/{reference.stem}.pdf").text)
        want = _words(reference.read_text())
        overlap = sum((got & want).values())
        f1 = 2 * overlap / (sum(got.values()) + sum(want.values()))
        assert f1 >= 0.85, f"{reference.stem}: word F1 {f1:.3f}"


@pytest.mark.parametrize("parser", ["pypdf", "pdfplumber", "pymupdf"])
def test_forcing_a_parser(parser: str) -> None:
    if parser == "pymupdf" and not pymupdf_available():
        pytest.skip("PyMuPDF (the pdf-fast extra) is not installed")
    doc = extract(PDFS / "pypdf_samples/pdflatex-4-pages.pdf", parser=parser)
    assert doc.parser == parser and len(doc.pages) == 4
    assert doc.metadata["router"]["reason"] == f"forced by parser={parser!r}"
    assert all(page.text for page in doc.pages)
