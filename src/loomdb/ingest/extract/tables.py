"""Tables as GitHub Markdown, the one table form that chunkers, embedders and people all read."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["is_real_table", "markdown_table"]


def _cell(value: str | None) -> str:
    """One cell on one line: inner line breaks become spaces and pipes are escaped."""
    if value is None:
        return ""
    return " ".join(value.split()).replace("|", "\\|")


def is_real_table(rows: Sequence[Sequence[str | None]]) -> bool:
    """At least two rows, two columns and two non-empty cells: less is a box, not a table."""
    width = max((len(row) for row in rows), default=0)
    filled = sum(1 for row in rows for value in row if value and value.strip())
    return len(rows) >= 2 and width >= 2 and filled >= 2


def markdown_table(rows: Sequence[Sequence[str | None]]) -> str:
    """Render rows as a Markdown table; the first row is the header, short rows are padded.

    Columns that are empty in every row (an artefact of merged cells in PDFs) are dropped.
    """
    width = max((len(row) for row in rows), default=0)
    grid = [[_cell(row[i]) if i < len(row) else "" for i in range(width)] for row in rows]
    keep = [i for i in range(width) if any(line[i] for line in grid)]
    grid = [[line[i] for i in keep] for line in grid]
    if not grid or not keep:
        return ""
    lines = ["| " + " | ".join(grid[0]) + " |", "|" + " --- |" * len(keep)]
    lines += ["| " + " | ".join(line) + " |" for line in grid[1:]]
    return "\n".join(lines)
