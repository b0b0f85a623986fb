"""Choose a PDF parser from what a few sampled pages look like.

The rules come from measuring the three parsers against docling's reference Markdown (see
benchmarks/bench_extract.py). pypdf is the default: it follows the content stream, which is the
right reading order for most prose, two-column papers included, and it keeps right-to-left
script in logical order (pdfplumber returns Arabic reversed). pdfplumber is the only one that
finds ruled tables, rendered as Markdown tables, but it is three to four times slower. PyMuPDF
(optional extra) is twenty times faster than pypdf once imported, and its import (about 0.6 s
in the worker) pays for itself past about 25 pages. The rules, in order:

1. ``parser=`` other than ``auto`` wins.
2. No text layer on any sampled page: pypdf, the cheapest way to confirm it on every page.
3. Right-to-left script on a sampled page: pypdf.
4. At least ``LONG_DOCUMENT_PAGES`` pages and PyMuPDF importable: pymupdf (tables stay text).
5. Ruled tables on a sampled page: pdfplumber.
6. Otherwise pypdf.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from ...model import JSONObject
from .backends import WORD_OPTIONS, page_tables
from .layout import find_gutter, group_lines

if TYPE_CHECKING:
    import pdfplumber.page
    import pdfplumber.pdf

__all__ = ["LONG_DOCUMENT_PAGES", "SAMPLE_PAGES", "Profile", "choose_parser", "profile_document"]

SAMPLE_PAGES = 4
LONG_DOCUMENT_PAGES = 25
RTL_SHARE = 0.3  # share of a page's letters in right-to-left scripts that makes it RTL


@dataclass(frozen=True)
class Profile:
    """What the router saw on the sampled pages (1-based page numbers)."""

    page_count: int
    sampled_pages: tuple[int, ...]
    text_pages: tuple[int, ...]
    table_pages: tuple[int, ...]
    multi_column_pages: tuple[int, ...]
    rtl_pages: tuple[int, ...]

    def as_metadata(self) -> JSONObject:
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items()}


def sample_pages(page_count: int, k: int = SAMPLE_PAGES) -> list[int]:
    """Up to ``k`` page indices spread evenly from the first page to the last."""
    if page_count <= k:
        return list(range(page_count))
    return sorted({round(i * (page_count - 1) / (k - 1)) for i in range(k)})


def profile_document(pdf: pdfplumber.pdf.PDF, page_count: int) -> Profile:
    """Look at a few pages for a text layer, right-to-left script, ruled tables and columns."""
    found: dict[str, list[int]] = {"text": [], "tables": [], "columns": [], "rtl": []}
    sampled = sample_pages(min(page_count, len(pdf.pages)))
    for index in sampled:  # pages stay parsed: the extractor reuses them, then closes them
        for key in _page_traits(pdf.pages[index]):
            found[key].append(index + 1)
    return Profile(page_count, tuple(i + 1 for i in sampled), tuple(found["text"]),
                   tuple(found["tables"]), tuple(found["columns"]), tuple(found["rtl"]))


def _page_traits(page: pdfplumber.page.Page) -> list[str]:
    letters = [c["text"] for c in page.chars if str(c["text"]).isalpha()]
    if not any(str(c["text"]).strip() for c in page.chars):
        return []
    traits = ["text"]
    if sum(1 for c in letters if _is_rtl(c)) > RTL_SHARE * len(letters):
        traits.append("rtl")
    if page_tables(page):
        traits.append("tables")
    if find_gutter(group_lines(page.extract_words(**WORD_OPTIONS)), float(page.width)):
        traits.append("columns")
    return traits


def _is_rtl(char: str) -> bool:
    """Hebrew, Arabic, Syriac, Thaana, N'Ko and their presentation forms."""
    code = ord(char[0]) if char else 0
    return 0x0590 <= code <= 0x08FF or 0xFB1D <= code <= 0xFDFF or 0xFE70 <= code <= 0xFEFF


def pymupdf_available() -> bool:
    """Whether the optional PyMuPDF extra is installed (found, not imported: importing it
    costs about half a second)."""
    return importlib.util.find_spec("pymupdf") is not None


def choose_parser(profile: Profile, forced: str = "auto") -> tuple[str, str]:
    """The parser for a document and the reason, as recorded in ``metadata["router"]``."""
    if forced != "auto":
        return forced, f"forced by parser={forced!r}"
    if not profile.text_pages:
        return "pypdf", "no text layer on the sampled pages; pypdf checks every page cheaply"
    if profile.rtl_pages:
        return "pypdf", (f"right-to-left script on sampled pages {_pages(profile.rtl_pages)}; "
                         "pypdf keeps it in logical order")
    if profile.page_count >= LONG_DOCUMENT_PAGES and pymupdf_available():
        return "pymupdf", (f"long document ({profile.page_count} pages): PyMuPDF is fastest"
                           + ("; its tables stay plain text" if profile.table_pages else ""))
    if profile.table_pages:
        return "pdfplumber", f"ruled tables on sampled pages {_pages(profile.table_pages)}"
    if profile.multi_column_pages:
        return "pypdf", (f"two text columns on sampled pages {_pages(profile.multi_column_pages)}"
                         "; pypdf reads them in content-stream order, column by column")
    return "pypdf", "prose without tables on the sampled pages"


def _pages(numbers: tuple[int, ...]) -> str:
    return ", ".join(str(n) for n in numbers)
