"""HTML to text with a little Markdown: headings, list items, code blocks and tables.

Boilerplate that is never content (scripts, styles, navigation, footers) is dropped; block
elements become paragraphs; headings keep their level as ``#`` marks so the chunker can cut at
sections. The walk is iterative, so a hostile page nested thousands deep cannot exhaust the
stack.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ...errors import ExtractionFailed, MissingDependency
from .base import ExtractedDocument, build_document
from .normalize import clean_text, collapse_blank_lines
from .tables import markdown_table

if TYPE_CHECKING:
    from bs4 import BeautifulSoup
    from bs4.element import Tag

__all__ = ["html_document"]

DROPPED = frozenset({"script", "style", "noscript", "template", "nav", "footer", "head",
                     "iframe", "svg", "canvas", "button", "select", "object"})
BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "form", "header", "hr", "html",
    "li", "main", "ol", "p", "section", "summary", "tr", "ul",
    "h1", "h2", "h3", "h4", "h5", "h6",
})
HEADINGS = {f"h{level}": "#" * level + " " for level in range(1, 7)}
MAX_COLSPAN = 50
_SPACE = re.compile(r"\s+")


class _Blocks:
    """Collects paragraphs: inline text accumulates until a block boundary flushes it."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.inline: list[str] = []
        self.prefix = ""

    def text(self, value: str) -> None:
        self.inline.append(_SPACE.sub(" ", value))

    def line_break(self) -> None:
        self.inline.append("\n")

    def flush(self) -> None:
        lines = (" ".join(line.split()) for line in "".join(self.inline).split("\n"))
        text = "\n".join(line for line in lines if line)
        if text:
            self.blocks.append(self.prefix + text)
            self.prefix = ""
        self.inline = []

    def block(self, text: str) -> None:
        self.flush()
        if text.strip():
            self.blocks.append(text)


def html_document(markup: bytes | str, source: str) -> ExtractedDocument:
    """Parse HTML (bytes are decoded by BeautifulSoup from the meta charset or by guessing)."""
    soup = _soup(markup, source)
    title = _title(soup)
    out = _Blocks()
    _walk(soup.body or soup, out)
    out.flush()
    text = collapse_blank_lines(clean_text("\n\n".join(out.blocks)))
    metadata = {"characters": len(text), "tables": sum(1 for b in out.blocks if b.startswith("|"))}
    return build_document(source, "text/html", [text], parser="html", title=title,
                          metadata=metadata)


def _soup(markup: bytes | str, source: str) -> BeautifulSoup:
    try:
        from bs4 import BeautifulSoup, FeatureNotFound
    except ImportError as exc:
        raise MissingDependency(
            f'{source}: reading HTML needs beautifulsoup4; pip install "loomdb[ingest]"') from exc
    with warnings.catch_warnings():  # "looks like a filename", "XML parsed as HTML"...
        warnings.simplefilter("ignore")
        try:
            return BeautifulSoup(markup, "lxml")
        except FeatureNotFound as exc:
            raise MissingDependency(
                f'{source}: reading HTML needs lxml; pip install "loomdb[ingest]"') from exc
        except (ValueError, RecursionError) as exc:
            raise ExtractionFailed(f"{source}: not readable as HTML ({exc})") from exc


def _title(soup: BeautifulSoup) -> str | None:
    """``<title>``, else the first ``<h1>``, whitespace squeezed."""
    for tag in (soup.title, soup.find("h1")):
        if tag is not None and (text := " ".join(tag.get_text(" ").split())):
            return text
    return None


def _walk(root: Tag, out: _Blocks) -> None:
    """Visit the tree depth first with an explicit stack, emitting blocks as they close."""
    from bs4.element import NavigableString, Tag

    stack: list[tuple[Tag, Iterator[object]]] = [(root, iter(root.children))]
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if node.name in BLOCKS:
                out.flush()
                if node.name in HEADINGS or node.name == "li":
                    out.prefix = ""  # an empty heading or item must not prefix what follows
            continue
        if isinstance(child, NavigableString):
            if type(child) is NavigableString:  # not a Comment, Doctype, CData...
                out.text(str(child))
        elif isinstance(child, Tag) and _open(child, out):
            stack.append((child, iter(child.children)))


def _open(tag: Tag, out: _Blocks) -> bool:
    """Handle a tag as it is entered; True if its children should be walked."""
    name = tag.name
    if name in DROPPED:
        return False
    if name == "br":
        out.line_break()
        return False
    if name == "table":
        out.block(_table(tag))
        return False
    if name == "pre":
        out.block("```\n" + tag.get_text().strip("\n") + "\n```")
        return False
    if name in BLOCKS:
        out.flush()
        out.prefix = HEADINGS.get(name, "- " if name == "li" else out.prefix)
    return True


def _table(table: Tag) -> str:
    """A ``<table>`` as Markdown; rows of nested tables belong to those, not to this one."""
    rows: list[list[str | None]] = []
    for row in table.find_all("tr"):
        if row.find_parent("table") is not table:
            continue
        cells: list[str | None] = []
        for cell in row.find_all(["td", "th"], recursive=False):
            cells.append(" ".join(cell.get_text(" ").split()))
            cells += [""] * (min(_colspan(cell), MAX_COLSPAN) - 1)
        rows.append(cells)
    return markdown_table(rows) if rows else ""


def _colspan(cell: Tag) -> int:
    value = cell.get("colspan")
    try:
        return max(1, int(str(value))) if value is not None else 1
    except ValueError:
        return 1
