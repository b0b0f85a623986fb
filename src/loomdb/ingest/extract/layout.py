"""Reading order for positioned words: lines, and two-column pages read column by column.

PDF text has no reading order of its own, only glyph positions. Sorting words into lines
top to bottom is right for one column but interleaves a two-column page line by line, so a
page whose words leave an empty vertical gutter near the middle is read left column first,
then right column, with full-width lines (titles, figures' captions across the page) kept in
place between the column blocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from statistics import median
from typing import Any

__all__ = ["Line", "PdfObject", "find_gutter", "group_lines", "ordered_lines"]

# A character, word or other object as pdfplumber gives it: coordinates (x0, x1, top, bottom)
# are floats, other values differ by key and by object; pdfplumber types it dict[str, Any].
PdfObject = Mapping[str, Any]
Word = PdfObject

GUTTER_BAND = (0.3, 0.7)  # where a column gutter may lie, as fractions of the page width
GUTTER_STEP = 2.0  # points between gutter candidates
MAX_CROSSING = 0.15  # share of lines that may cross the gutter (full-width titles)
MIN_PAIRED = 0.4  # share of lines with filled text on both sides of the gutter
MIN_LINES = 8  # fewer lines than this is not enough evidence for columns


@dataclass(frozen=True)
class Line:
    """A run of words on one baseline (or one column's part of it)."""

    top: float
    x0: float
    x1: float
    text: str


def group_lines(words: Iterable[Word]) -> list[list[Word]]:
    """Cluster words into lines by vertical centre; each line sorted left to right."""
    ordered = sorted(words, key=lambda w: (_mid(w), float(w["x0"])))
    heights = [float(w["bottom"]) - float(w["top"]) for w in ordered]
    tolerance = 0.5 * median(heights) if heights else 1.0
    lines: list[list[Word]] = []
    for word in ordered:
        if lines and abs(_mid(word) - _mid(lines[-1][0])) <= tolerance:
            lines[-1].append(word)
        else:
            lines.append([word])
    return [sorted(line, key=lambda w: float(w["x0"])) for line in lines]


def find_gutter(lines: Sequence[Sequence[Word]], width: float) -> float | None:
    """The x of an empty vertical band splitting the page into two text columns, if any."""
    if len(lines) < MIN_LINES or width <= 0:
        return None
    left_edge = min(float(line[0]["x0"]) for line in lines)
    right_edge = max(float(line[-1]["x1"]) for line in lines)
    best: tuple[int, float] | None = None
    x = width * GUTTER_BAND[0]
    while x <= width * GUTTER_BAND[1]:
        crossing = sum(1 for line in lines if _crosses(line, x))
        if best is None or crossing < best[0]:
            best = (crossing, x)
        x += GUTTER_STEP
    if best is None or best[0] > MAX_CROSSING * len(lines):
        return None
    gutter = best[1]
    paired = sum(1 for line in lines if _filled_both_sides(line, gutter, left_edge, right_edge))
    return gutter if paired >= MIN_PAIRED * len(lines) else None


def ordered_lines(words: Iterable[Word], width: float) -> list[Line]:
    """Lines of text in reading order: top to bottom, two-column blocks column by column."""
    lines = group_lines(words)
    gutter = find_gutter(lines, width)
    if gutter is None:
        return [_line(line) for line in lines]
    out: list[Line] = []
    left: list[Line] = []
    right: list[Line] = []
    for line in lines:
        if _crosses(line, gutter):
            out += left + right + [_line(line)]
            left, right = [], []
            continue
        parts = ([w for w in line if float(w["x1"]) <= gutter],
                 [w for w in line if float(w["x0"]) >= gutter])
        left += [_line(parts[0])] if parts[0] else []
        right += [_line(parts[1])] if parts[1] else []
    return out + left + right


def _mid(word: Word) -> float:
    return (float(word["top"]) + float(word["bottom"])) / 2


def _crosses(line: Sequence[Word], x: float) -> bool:
    return any(float(w["x0"]) < x < float(w["x1"]) for w in line)


def _filled_both_sides(line: Sequence[Word], x: float, left_edge: float, right_edge: float) -> bool:
    """Whether the line's text covers at least half of each column's width."""
    left = [w for w in line if float(w["x1"]) <= x]
    right = [w for w in line if float(w["x0"]) >= x]
    if not left or not right:
        return False
    left_span = float(left[-1]["x1"]) - float(left[0]["x0"])
    right_span = float(right[-1]["x1"]) - float(right[0]["x0"])
    return (left_span >= 0.5 * (x - left_edge) and right_span >= 0.5 * (right_edge - x)
            and _is_prose(left) and _is_prose(right))


def _is_prose(words: Sequence[Word]) -> bool:
    """No gap between neighbouring words wider than two letter heights: a column of running
    text, not the cells of a table laid out without rules."""
    height = max(float(w["bottom"]) - float(w["top"]) for w in words)
    gaps = (float(b["x0"]) - float(a["x1"]) for a, b in pairwise(words))
    return all(gap <= 2 * height for gap in gaps)


def _line(words: Sequence[Word]) -> Line:
    return Line(
        top=float(words[0]["top"]),
        x0=float(words[0]["x0"]),
        x1=float(words[-1]["x1"]),
        text=" ".join(str(w["text"]) for w in words),
    )
