"""Parse one PDF into normalised page texts; runs inside the limited worker process only.

Outcomes a user should act on are raised as loomdb errors (``PasswordRequired``,
``NoTextLayer``, ``LimitExceeded``...); the worker sends their code and message to the parent,
which raises the same class again. Every message names the file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from ...errors import (
    ExtractionFailed,
    LimitExceeded,
    MissingDependency,
    NoTextLayer,
    PasswordRequired,
)
from ...model import JSONObject
from .backends import PageTexts, pdfplumber_pages, pymupdf_pages, pypdf_pages
from .normalize import dehyphenate, normalize_pdf_page
from .router import Profile, choose_parser, profile_document
from .wire import ParsedPdf, PdfRequest

if TYPE_CHECKING:
    import pdfplumber.pdf
    import pypdf

__all__ = ["parse_pdf"]

INFO_KEYS = {"/Title": "title", "/Author": "author", "/Subject": "subject",
             "/Creator": "creator", "/Producer": "producer", "/CreationDate": "created"}


def parse_pdf(request: PdfRequest) -> ParsedPdf:
    """Extract a PDF as the worker's answer: parser, title, page texts, metadata, warnings.

    ``request`` holds ``path``, ``name`` (for messages), ``password``, ``parser`` and
    ``max_pages``.
    """
    path, name = str(request["path"]), str(request["name"])
    reader = _open_reader(path, name)
    password = _unlock(reader, name, request.get("password"))
    page_count = _page_count(reader, name, int(request["max_pages"]))
    with _open_plumber(path, password) as pdf:
        profile = profile_document(pdf, page_count) if pdf is not None else None
        parser, reason = _route(profile, str(request.get("parser", "auto")))
        auto = request.get("parser", "auto") == "auto"
        raw = _extract(parser, reader, pdf, path, password, name, auto)
    pages = dehyphenate([normalize_pdf_page(text) for text in raw.texts])
    if not any(pages) and not raw.warnings:
        raise NoTextLayer(
            f"{name}: no text layer on any of its {len(pages)} pages (an image-only PDF, "
            "such as a scan); OCR is not available, so there is no text to extract")
    if not any(pages):
        raise ExtractionFailed(f"{name}: no page could be read; first error: {raw.warnings[0]}")
    router: JSONObject = {"parser": parser, "reason": reason,
                          **(profile.as_metadata() if profile else {})}
    info = _info(reader)
    metadata: JSONObject = {"page_count": len(pages), "encrypted": bool(reader.is_encrypted),
                            "router": router, **info}
    if parser == "pdfplumber":
        metadata["tables"] = raw.tables
        router["pypdf_pages"] = [*raw.prose_pages]
    return {"parser": parser, "title": info.get("title"), "pages": pages,
            "metadata": metadata, "warnings": raw.warnings + _empty_pages(pages, raw)}


def _open_reader(path: str, name: str) -> pypdf.PdfReader:
    """Open with pypdf, which also tells whether the file is encrypted and how many pages."""
    import pypdf

    try:
        return pypdf.PdfReader(path, strict=False)
    except pypdf.errors.PdfReadError as exc:
        raise ExtractionFailed(f"{name}: not a readable PDF ({exc})") from exc


def _unlock(reader: pypdf.PdfReader, name: str, password: str | None) -> str | None:
    """Decrypt an encrypted file and return the password that worked ('' when the file only
    has an owner password, as many "protected" PDFs do)."""
    if not reader.is_encrypted:
        return None
    import pypdf

    for candidate in ([password] if password else []) + [""]:
        try:
            if reader.decrypt(candidate) != pypdf.PasswordType.NOT_DECRYPTED:
                return candidate
        except pypdf.errors.DependencyError as exc:
            raise MissingDependency(
                f"{name}: decrypting this PDF needs the cryptography package; "
                'pip install "loomdb[pdf]" cryptography') from exc
    if password:
        raise PasswordRequired(f"{name}: the password given does not open this encrypted PDF")
    raise PasswordRequired(f"{name}: this PDF is encrypted; pass password= to open it")


def _page_count(reader: pypdf.PdfReader, name: str, max_pages: int) -> int:
    """The declared page count, refused above ``max_pages`` before any page is parsed."""
    try:
        count = len(reader.pages)
    except RecursionError as exc:
        raise ExtractionFailed(f"{name}: its page tree is nested too deeply") from exc
    if count > max_pages:
        raise LimitExceeded(f"{name}: {count:,} pages exceeds max_pages={max_pages:,}")
    if count == 0:
        raise ExtractionFailed(f"{name}: the PDF has no pages")
    return count


@contextlib.contextmanager
def _open_plumber(path: str, password: str | None) -> Iterator[pdfplumber.pdf.PDF | None]:
    """pdfplumber's view of the file, or None where pdfminer cannot read what pypdf can."""
    import pdfplumber

    try:
        pdf = pdfplumber.open(path, password=password or "")
    except MemoryError:
        raise
    except Exception:  # pdfminer's errors have no common base; pypdf already read the file
        yield None
        return
    try:
        yield pdf
    finally:
        pdf.close()


def _route(profile: Profile | None, forced: str) -> tuple[str, str]:
    if profile is None:
        if forced in ("auto", "pdfplumber"):
            return "pypdf", "pdfplumber (pdfminer) cannot read this file; pypdf can"
        return forced, f"forced by parser={forced!r}"
    return choose_parser(profile, forced)


def _extract(parser: str, reader: pypdf.PdfReader, pdf: pdfplumber.pdf.PDF | None, path: str,
             password: str | None, name: str, auto: bool) -> PageTexts:
    """Run the chosen parser; the router's pdfplumber leaves pages without tables to pypdf."""
    if parser == "pymupdf":
        try:
            return pymupdf_pages(path, password)
        except ImportError as exc:
            raise MissingDependency(
                f"{name}: parser='pymupdf' needs PyMuPDF; pip install \"loomdb[pdf-fast]\""
            ) from exc
    if parser == "pdfplumber" and pdf is not None:
        return pdfplumber_pages(pdf, prose=reader if auto else None)
    return pypdf_pages(reader)


def _info(reader: pypdf.PdfReader) -> dict[str, str]:
    """Document information (title, author...) as plain strings, skipping unreadable ones."""
    try:
        info: Mapping[str, object] = reader.metadata or {}
    except Exception:  # a broken /Info dictionary is not worth failing the document for
        return {}
    out = {}
    for key, field in INFO_KEYS.items():
        value = info.get(key)
        text = " ".join(str(value).split()) if value is not None else ""
        if text:
            out[field] = text
    return out


def _empty_pages(pages: list[str], raw: PageTexts) -> list[str]:
    """A warning for each page with no text that did not already fail with its own warning."""
    failed = {w.split()[1] for w in raw.warnings if w.startswith("page ")}
    return [f"page {n} has no text layer" for n, text in enumerate(pages, start=1)
            if not text and str(n) not in failed]
