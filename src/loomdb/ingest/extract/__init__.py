"""Files to text with page numbers, defensively.

    >>> from loomdb.ingest.extract import extract_text
    >>> doc = extract_text("# Notes\\n\\nFirst point.", media_type="text/markdown")
    >>> doc.title, doc.pages[0].number
    ('Notes', 1)

``extract`` reads PDF, plain text, Markdown and HTML. PDFs are parsed in a separate process
with time, memory and page limits (see ``worker.py``), by pypdf, pdfplumber or PyMuPDF as the
router picks (``router.py``); text and HTML are parsed here, after the size check. Every failure
is a ``LoomError`` naming the file: ``UnsupportedFormat``, ``NoTextLayer``,
``PasswordRequired``, ``LimitExceeded``, ``ExtractionFailed``, ``NotFound``, ``InvalidInput``,
``MissingDependency``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ...errors import ExtractionFailed, InvalidInput, LimitExceeded
from .base import PARSERS, ExtractedDocument, ExtractLimits, Page
from .html import html_document
from .pdf import extract_pdf
from .source import check_chars, check_size, open_source, stat_source
from .text import decode_text, detect_media_type, text_document

__all__ = ["ExtractLimits", "ExtractedDocument", "Page", "extract", "extract_text"]

HEAD_BYTES = 1024
PARSER_FOR = {"text/plain": "text", "text/markdown": "markdown", "text/html": "html"}


def extract(
    source: str | os.PathLike[str] | bytes,
    *,
    media_type: str | None = None,
    password: str | None = None,
    parser: str = "auto",
    limits: ExtractLimits | None = None,
) -> ExtractedDocument:
    """Extract a file (a path) or in-memory file content (bytes) as text with pages.

    Args:
        source: a path, or the bytes of a file (``source`` is then ``"<bytes>"``).
        media_type: skip detection (extension or ``%PDF-`` magic) and read as this type.
        password: opens an encrypted PDF.
        parser: ``"auto"`` (the router decides) or one of pypdf, pdfplumber, pymupdf for PDFs.
        limits: size, page, time and memory bounds (defaults: ``ExtractLimits()``).
    """
    limits = limits or ExtractLimits()
    if parser != "auto" and parser not in PARSERS:
        raise InvalidInput(f"parser {parser!r} is not 'auto' or one of {', '.join(PARSERS)}")
    if isinstance(source, bytes | bytearray | memoryview):
        document = _extract_bytes(bytes(source), media_type, password, parser, limits)
    else:
        document = _extract_path(source, media_type, password, parser, limits)
    check_chars(document.source, len(document.text), limits)
    return document


def extract_text(text: str, *, media_type: str = "text/plain", title: str | None = None,
                 limits: ExtractLimits | None = None) -> ExtractedDocument:
    """A document from a string already in memory (``source`` is ``"<text>"``).

    ``media_type`` is ``text/plain``, ``text/markdown`` (title from the first ``# `` heading
    unless given) or ``text/html``. A text over ``limits.max_chars`` is refused before it is
    read (``LimitExceeded``).
    """
    check_chars("<text>", len(text), limits or ExtractLimits())
    if media_type not in PARSER_FOR:
        raise InvalidInput(f"<text>: media_type must be one of {', '.join(PARSER_FOR)}")
    if media_type == "text/html":
        doc = html_document(text, "<text>")
        if title is None:
            return doc
        return ExtractedDocument(doc.source, doc.media_type, title, doc.text, doc.pages,
                                 doc.parser, doc.metadata, doc.warnings)
    return text_document(text, "<text>", media_type, title=title)


def _extract_path(source: str | os.PathLike[str], media_type: str | None, password: str | None,
                  parser: str, limits: ExtractLimits) -> ExtractedDocument:
    name = os.fspath(source)
    size = stat_source(name, limits).st_size
    kind, data = _read(name, media_type, limits)
    if kind == "application/pdf":
        return _pdf(str(Path(name).resolve()), name, size, password, parser, limits)
    check_size(name, len(data), limits)  # the file may have grown since stat
    return _in_process(data, name, kind, parser, limits)


def _read(name: str, media_type: str | None, limits: ExtractLimits) -> tuple[str, bytes]:
    """The file's media type, and its bytes unless it is a PDF (the worker reads those)."""
    with open_source(name, limits) as handle:
        try:
            head = handle.read(HEAD_BYTES)
            kind = detect_media_type(name, head, media_type)
            if kind == "application/pdf":
                return kind, b""
            return kind, head + handle.read(limits.max_bytes + 1 - len(head))
        except OSError as exc:
            raise InvalidInput(f"{name}: cannot be read ({exc.strerror or exc})") from exc


def _extract_bytes(data: bytes, media_type: str | None, password: str | None, parser: str,
                   limits: ExtractLimits) -> ExtractedDocument:
    name = "<bytes>"
    check_size(name, len(data), limits)
    kind = detect_media_type(None, data[:HEAD_BYTES], media_type)
    if kind != "application/pdf":
        return _in_process(data, name, kind, parser, limits)
    with tempfile.TemporaryDirectory(prefix="loomdb-extract-") as folder:
        path = Path(folder) / "document.pdf"
        path.write_bytes(data)
        return _pdf(str(path), name, len(data), password, parser, limits)


def _pdf(path: str, name: str, size: int, password: str | None, parser: str,
         limits: ExtractLimits) -> ExtractedDocument:
    if parser in PARSER_FOR.values():
        raise InvalidInput(f"{name}: parser {parser!r} cannot read a PDF")
    if size == 0:
        raise ExtractionFailed(f"{name}: the file is empty, not a PDF")
    return extract_pdf(path, name, password=password, parser=parser, limits=limits)


def _in_process(data: bytes, name: str, media_type: str, parser: str,
                limits: ExtractLimits) -> ExtractedDocument:
    """Text, Markdown or HTML, parsed in this process: linear in the size, which
    ``max_bytes`` bounds before the file is read; text is also held to ``max_chars`` before
    and after it is decoded."""
    if parser not in ("auto", PARSER_FOR[media_type]):
        raise InvalidInput(f"{name}: parser {parser!r} cannot read {media_type}")
    if media_type == "text/html":
        return html_document(data, name)
    if len(data) > 4 * limits.max_chars:  # no text encoding spends more than 4 bytes a character
        raise LimitExceeded(
            f"{name}: {len(data):,} bytes of text exceed max_chars={limits.max_chars:,}")
    text = decode_text(data, name)
    check_chars(name, len(text), limits)
    warnings = ("the file is empty",) if not data else ()
    return text_document(text, name, media_type, warnings=warnings)
