"""The three PDF text extractors, each turning an opened document into raw page texts.

These run inside the parsing worker process only. Each returns one string per page (raw, not
yet normalised) and a warning for each page it could not read: one broken page costs its own
text, not the whole document. ``MemoryError`` is never swallowed, so the memory limit surfaces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Protocol

from .layout import Line, PdfObject, ordered_lines
from .tables import is_real_table, markdown_table

if TYPE_CHECKING:
    import pdfplumber.page
    import pdfplumber.pdf
    import pypdf

__all__ = ["PageTexts", "pdfplumber_pages", "pymupdf_pages", "pypdf_pages"]

Box = tuple[float, float, float, float]
# Letters closer than 0.15 of their size belong to one word. pdfplumber's default (3 points)
# glues the words of tightly justified lines together ("doloremagnaaliquyam"); relative to the
# font size it does not (word F1 against docling's ground truth 0.83 -> 0.99).
WORD_OPTIONS: dict[str, float] = {"x_tolerance_ratio": 0.15}
DOUBLED_SHARE = 0.05  # duplicate glyphs beyond this share of a page: keep it from pypdf


class _MuPage(Protocol):
    """What we read of a PyMuPDF ``Page`` (whose ``get_text`` is untyped)."""

    def get_text(self) -> object: ...


class PageTexts:
    """Raw text per page, plus warnings and counters gathered while extracting."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.warnings: list[str] = []
        self.tables = 0
        self.prose_pages: list[int] = []  # pages pdfplumber left to pypdf (no tables)

    def add(self, number: int, read: Callable[[], str]) -> None:
        """Append page ``number``'s text; a page that fails becomes empty with a warning."""
        try:
            self.texts.append(read())
        except MemoryError:
            raise
        except Exception as exc:  # any parser bug on one page: keep the other pages
            self.texts.append("")
            self.warnings.append(f"page {number} could not be read ({type(exc).__name__}: {exc})")


def pypdf_pages(reader: pypdf.PdfReader) -> PageTexts:
    """Text of every page in content-stream order (pypdf's default extraction)."""
    out = PageTexts()
    for number, page in enumerate(reader.pages, start=1):
        out.add(number, page.extract_text)
    return out


def pymupdf_pages(path: str, password: str | None) -> PageTexts:
    """Text of every page through PyMuPDF, the fastest of the three on long documents."""
    import pymupdf

    out = PageTexts()
    with pymupdf.open(path, filetype="pdf") as doc:  # type: ignore[no-untyped-call]
        if doc.needs_pass:
            doc.authenticate(password or "")
        for number, page in enumerate(doc, start=1):
            out.add(number, partial(_mupdf_text, page))
    return out


def _mupdf_text(page: _MuPage) -> str:
    return str(page.get_text())


def pdfplumber_pages(pdf: pdfplumber.pdf.PDF, prose: pypdf.PdfReader | None = None) -> PageTexts:
    """Text of every page, ruled tables rendered as Markdown tables in place.

    With ``prose`` (the router's choice), pages without a table are read by pypdf instead:
    its content-stream order beats pdfplumber's geometric order on complex prose layouts, so
    each page gets the better of the two. Without it (``parser="pdfplumber"``) every page is
    pdfplumber's.
    """
    out = PageTexts()
    for number, page in enumerate(pdf.pages, start=1):
        out.add(number, partial(_page_text, page, number, prose, out))
        page.close()  # drop the page's cached objects: long documents stay small
    return out


def _page_text(
    page: pdfplumber.page.Page, number: int, prose: pypdf.PdfReader | None, out: PageTexts
) -> str:
    doubled = duplicate_share(page.chars) > DOUBLED_SHARE
    if doubled:  # text drawn twice for a bold effect would read "BBoolldd"
        page = page.dedupe_chars()
    tables = page_tables(page)
    out.tables += len(tables)
    if not tables and prose is not None and not doubled:  # pypdf cannot undo doubled text
        out.prose_pages.append(number)
        return str(prose.pages[number - 1].extract_text())
    return _plumber_page(page, tables)


def duplicate_share(chars: Sequence[PdfObject]) -> float:
    """Share of glyphs repeated at (about) the same place. pdfplumber's ``dedupe_chars``
    removes them but costs about a second a page, so it runs only where this finds some."""
    seen: set[tuple[str, int, int]] = set()
    repeated = 0
    for char in chars:
        key = (str(char["text"]), round(float(char["x0"])), round(float(char["top"])))
        repeated += key in seen
        seen.add(key)
    return repeated / len(chars) if chars else 0.0


def _plumber_page(page: pdfplumber.page.Page, tables: list[tuple[Box, str]]) -> str:
    """One page: text lines outside tables in reading order, each table as Markdown."""
    boxes = [box for box, _ in tables]
    outside = page.filter(lambda obj: not _inside_any(obj, boxes)) if boxes else page
    lines = ordered_lines(outside.extract_words(**WORD_OPTIONS), float(page.width))
    return _merge_tables(lines, tables)


def page_tables(page: pdfplumber.page.Page) -> list[tuple[Box, str]]:
    """Ruled tables of a page as (bounding box, Markdown), skipping boxes that are not tables
    (empty frames, single columns) and tables nested inside another one."""
    kept: list[tuple[Box, str]] = []
    candidates = sorted(page.find_tables(), key=lambda t: _area(t.bbox), reverse=True)
    for table in candidates:
        box: Box = tuple(table.bbox)  # type: ignore[assignment]
        if any(_contains(outer, box) for outer, _ in kept):
            continue
        rows = table.extract(**WORD_OPTIONS)
        if is_real_table(rows) and (text := markdown_table(rows)):
            kept.append((box, text))
    return kept


def _merge_tables(lines: list[Line], tables: Sequence[tuple[Box, str]]) -> str:
    """Put each table before the first line (in reading order) below its top that shares its
    columns; a table with nothing below it goes last."""
    parts = [line.text for line in lines]
    placed: list[tuple[int, float, str]] = []
    for box, md in tables:
        below = (i for i, line in enumerate(lines)
                 if line.top >= box[1] and line.x0 < box[2] and line.x1 > box[0])
        placed.append((next(below, len(lines)), box[1], md))
    for index, _, md in sorted(placed, reverse=True):
        parts.insert(index, f"\n{md}\n")
    return "\n".join(parts)


def _inside_any(obj: PdfObject, boxes: Iterable[Box]) -> bool:
    """Whether an object's centre lies in one of the boxes."""
    x = (float(obj.get("x0", 0)) + float(obj.get("x1", 0))) / 2
    y = (float(obj.get("top", 0)) + float(obj.get("bottom", 0))) / 2
    return any(x0 <= x <= x1 and top <= y <= bottom for x0, top, x1, bottom in boxes)


def _contains(outer: Box, inner: Box) -> bool:
    slack = 1.0
    return (outer[0] - slack <= inner[0] and outer[1] - slack <= inner[1]
            and inner[2] <= outer[2] + slack and inner[3] <= outer[3] + slack)


def _area(box: Sequence[float]) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])
