"""Text clean-up shared by every format: what a chunker and an embedder should never see.

``clean_text`` is safe for any text (it only removes what cannot be meant: NULs, control
characters, stray carriage returns). ``normalize_pdf_page`` goes further for PDF text, where
spacing and line breaks are artefacts of layout, not of the author. ``dehyphenate`` joins words a
PDF split across lines, but only where the document itself shows the joined word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["clean_text", "collapse_blank_lines", "dehyphenate", "normalize_pdf_page"]

# C0 controls except \t and \n, DEL, C1 controls, lone surrogates and non-characters;
# \r and \f are handled before this.
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_BLANK_RUN = re.compile(r"\n(?:[ \t]*\n){2,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_INNER_SPACE = re.compile(r"[ \t\u00a0\u2000-\u200a\u3000]{2,}|\t|\u00a0")
_LIGATURES = str.maketrans(
    {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
     "\ufb05": "st", "\ufb06": "st"}
)
# "exam-\nple": a lowercase letter, a hyphen (or soft hyphen) ending the line, a lowercase letter.
_SPLIT_WORD = re.compile(r"(\w*[^\W\d_])[-\u00ad]\n([^\W\d_A-Z]\w*)([^\S\n]?)")
_WORD = re.compile(r"\w+(?:-\w+)*")


def clean_text(text: str) -> str:
    """Unify line ends, turn form feeds into blank lines, and drop control characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    return _CONTROL.sub("", text)


def collapse_blank_lines(text: str) -> str:
    """Strip trailing spaces and squeeze runs of blank lines into one blank line."""
    text = _TRAILING_SPACE.sub("\n", text + "\n")
    return _BLANK_RUN.sub("\n\n", text).strip("\n")


def normalize_pdf_page(text: str) -> str:
    """Clean one PDF page: ligatures expanded, spacing runs squeezed, blank runs collapsed.

    Runs of spaces in PDF text come from glyph positions, not from the author, so they are
    squeezed to one; leading indentation goes too.
    """
    text = clean_text(text).translate(_LIGATURES)
    lines = [_INNER_SPACE.sub(" ", line).strip() for line in text.split("\n")]
    return collapse_blank_lines("\n".join(lines))


def dehyphenate(pages: Sequence[str]) -> list[str]:
    """Join words split by a hyphen at a line end, where the document proves it safe.

    ``exam-\\nple`` becomes ``example`` only if ``example`` appears elsewhere in the document,
    and ``well-\\nknown`` becomes ``well-known`` only if that form appears elsewhere; otherwise the
    text is left as it was (a dictionary-free guess would corrupt compounds and names).
    """
    vocabulary = {word.lower() for page in pages for word in _WORD.findall(page)}

    def join(match: re.Match[str]) -> str:
        head, tail, space = match.group(1), match.group(2), match.group(3)
        if (head + tail).lower() in vocabulary:
            return head + tail + ("\n" if space else "")
        if f"{head}-{tail}".lower() in vocabulary:
            return f"{head}-{tail}" + ("\n" if space else "")
        return match.group(0)

    return [_SPLIT_WORD.sub(join, page) for page in pages]
