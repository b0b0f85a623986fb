"""Plain text and Markdown: media type detection, decoding, and the Markdown title.

These parse in the caller's process: decoding text cannot crash or run away the way a PDF
parser can, and the size limit is checked before the bytes are read.
"""

from __future__ import annotations

import re
from pathlib import PurePath

from ...errors import ExtractionFailed, MissingDependency, UnsupportedFormat
from .base import MEDIA_TYPES, ExtractedDocument, build_document
from .normalize import clean_text, collapse_blank_lines

__all__ = ["EXTENSIONS", "decode_text", "detect_media_type", "markdown_title", "text_document"]

EXTENSIONS = {
    ".txt": "text/plain", ".text": "text/plain", ".log": "text/plain",
    ".md": "text/markdown", ".markdown": "text/markdown",
    ".html": "text/html", ".htm": "text/html",
    ".pdf": "application/pdf",
}
PDF_MAGIC = b"%PDF-"
PDF_HEADER_WINDOW = 1024  # the PDF spec lets the header start anywhere in the first 1 KiB
BINARY_SAMPLE = 65_536  # characters looked at to tell text from binary
BINARY_SHARE = 0.05
_BINARY_CHARS = frozenset(chr(c) for c in [*range(0, 9), 11, *range(14, 32), 127])
_ATX_H1 = re.compile(r"^ {0,3}# +(.+?)(?: +#+)? *$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def detect_media_type(name: str | None, head: bytes, declared: str | None = None) -> str:
    """``declared`` if given, else a PDF by its magic bytes, else by file extension.

    A file that starts with ``%PDF-`` is a PDF whatever its name; one that only mentions it
    in its first KiB (a note about PDFs, say) goes by its extension.

    Raises:
        UnsupportedFormat: a declared type loomdb cannot read, or an unknown extension.
    """
    label = name or "<bytes>"
    if declared is not None:
        if declared not in MEDIA_TYPES:
            raise UnsupportedFormat(
                f"{label}: media type {declared!r} is not one of {', '.join(MEDIA_TYPES)}")
        return declared
    if head.lstrip(b"\xef\xbb\xbf \t\r\n\x00").startswith(PDF_MAGIC):
        return "application/pdf"
    suffix = PurePath(name).suffix.lower() if name else ""
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    if PDF_MAGIC in head[:PDF_HEADER_WINDOW]:  # readers accept junk before the header
        return "application/pdf"
    what = f"extension {suffix!r}" if suffix else "no known extension and no PDF header"
    raise UnsupportedFormat(
        f"{label}: {what}; loomdb reads PDF, plain text (.txt .text .log), Markdown "
        "(.md .markdown) and HTML (.html .htm); pass media_type= to override")


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 (with or without a BOM), else charset-normalizer's best guess.

    Raises:
        ExtractionFailed: no encoding explains the bytes (a binary file, most likely).
    """
    try:
        return _refuse_binary(data.decode("utf-8-sig"), name)
    except UnicodeDecodeError:
        pass
    try:
        from charset_normalizer import from_bytes
    except ImportError as exc:
        raise MissingDependency(
            f"{name}: is not UTF-8, and guessing its encoding needs charset-normalizer; "
            'pip install "loomdb[ingest]"') from exc
    best = from_bytes(data).best()
    if best is None:
        raise ExtractionFailed(f"{name}: not UTF-8 and no text encoding fits; a binary file?")
    return _refuse_binary(str(best), name)


def _refuse_binary(text: str, name: str) -> str:
    """Text with many control characters is a binary file that happened to decode."""
    controls = sum(1 for char in text[:BINARY_SAMPLE] if char in _BINARY_CHARS)
    if controls > BINARY_SHARE * min(len(text), BINARY_SAMPLE):
        raise ExtractionFailed(f"{name}: looks like a binary file, not text")
    return text


def markdown_title(text: str) -> str | None:
    """The first level-1 ATX heading (``# Title``) outside fenced code, if any."""
    fenced = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := _ATX_H1.match(line)):
            return match.group(1).strip()
    return None


def text_document(text: str, source: str, media_type: str, title: str | None = None,
                  warnings: tuple[str, ...] = ()) -> ExtractedDocument:
    """A one-page document from already-decoded text or Markdown."""
    cleaned = collapse_blank_lines(clean_text(text))
    if media_type == "text/markdown":
        title = title or markdown_title(cleaned)
        parser = "markdown"
    else:
        parser = "text"
    metadata = {"characters": len(cleaned), "lines": cleaned.count("\n") + 1 if cleaned else 0}
    return build_document(source, media_type, [cleaned], parser=parser, title=title,
                          metadata=metadata, warnings=warnings)
