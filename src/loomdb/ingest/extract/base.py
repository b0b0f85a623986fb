"""The extraction result types, shared by every format and by the PDF worker process."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ...errors import InvalidInput
from ...model import JSONObject, JSONValue

__all__ = [
    "MEDIA_TYPES",
    "PAGE_SEPARATOR",
    "PARSERS",
    "PDF_PARSERS",
    "ExtractLimits",
    "ExtractedDocument",
    "Page",
    "build_document",
]

PAGE_SEPARATOR = "\n\n"
PDF_PARSERS = ("pypdf", "pdfplumber", "pymupdf")
PARSERS = (*PDF_PARSERS, "text", "markdown", "html")
MEDIA_TYPES = ("application/pdf", "text/plain", "text/markdown", "text/html")


@dataclass(frozen=True)
class Page:
    """One page of a document; non-paged formats have a single page numbered 1.

    Attributes:
        number: 1-based page number, as a citation shows it.
        text: the page's text, already normalised.
        start: offset of ``text`` within ``ExtractedDocument.text``, so that a chunk's span maps
            back to its page.
    """

    number: int
    text: str
    start: int


@dataclass(frozen=True)
class ExtractedDocument:
    """A file turned into text, with the pages that text came from.

    ``text`` is the pages' text joined with a blank line, and for every page
    ``text[p.start:p.start + len(p.text)] == p.text``.
    """

    source: str
    media_type: str
    title: str | None
    text: str
    pages: tuple[Page, ...]
    parser: str
    metadata: JSONObject = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def page_at(self, offset: int) -> Page:
        """The page whose text holds ``offset`` (the page before a separator owns it)."""
        owner = self.pages[0]
        for page in self.pages:
            if page.start > offset:
                break
            owner = page
        return owner


@dataclass(frozen=True)
class ExtractLimits:
    """Bounds on what one extraction may consume; exceeding one raises ``LimitExceeded``.

    Attributes:
        max_bytes: largest file accepted, checked before the file is read.
        max_pages: most pages a PDF may have (declared or real).
        timeout: wall-clock seconds for one file, enforced by killing the parsing process.
        max_memory: address space (``RLIMIT_AS``) of the PDF parsing process, in bytes.
        max_chars: most characters of text one document may hold, whatever its source (a
            file's extracted text, or ``ingest(text=...)``), checked before it is chunked; the
            default is about 2,000 dense pages, in scale with ``max_pages``, and chunking it
            takes minutes on a CPU (every sentence is embedded).
    """

    max_bytes: int = 200 * 2**20
    max_pages: int = 2000
    timeout: float = 120.0
    max_memory: int = 2 * 2**30
    max_chars: int = 10_000_000

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pages", "timeout", "max_memory", "max_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise InvalidInput(f"ExtractLimits.{name} must be a positive number, not {value!r}")


def build_document(
    source: str,
    media_type: str,
    page_texts: Sequence[str],
    *,
    parser: str,
    title: str | None = None,
    metadata: Mapping[str, JSONValue] | None = None,
    warnings: Iterable[str] = (),
) -> ExtractedDocument:
    """Join page texts into one document, recording where each page starts."""
    pages: list[Page] = []
    offset = 0
    for number, text in enumerate(page_texts, start=1):
        pages.append(Page(number=number, text=text, start=offset))
        offset += len(text) + len(PAGE_SEPARATOR)
    return ExtractedDocument(
        source=source,
        media_type=media_type,
        title=title,
        text=PAGE_SEPARATOR.join(page_texts),
        pages=tuple(pages),
        parser=parser,
        metadata=dict(metadata or {}),
        warnings=tuple(warnings),
    )
