"""What every command shares: the --store/--tenant/--json options, opening the store, parsing
JSON arguments, the error boundary and the rich/JSON output helpers."""

from __future__ import annotations

import dataclasses
import errno
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

import loomdb
from loomdb import (
    Edge,
    Hit,
    InvalidFilter,
    InvalidInput,
    JSONObject,
    LoomError,
    Node,
    NotFound,
    default_store_path,
)

__all__ = [
    "DirectionChoice",
    "JsonOpt",
    "LoomGroup",
    "StoreOpt",
    "TenantOpt",
    "cell",
    "edge_dict",
    "edges_table",
    "hit_dict",
    "hits_table",
    "node_dict",
    "open_store",
    "parse_filter_json",
    "parse_props_json",
    "print_json",
    "shorten",
    "stdout",
    "store_path",
]

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", "-s", show_default=False,
                 help="Store directory or postgresql:// URL (default: $LOOMDB_STORE, else "
                      "./loomdb-store)."),
]
TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant to read and write.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


class DirectionChoice(StrEnum):
    """Which edges a graph command follows, relative to the node."""

    out = "out"
    in_ = "in"
    both = "both"


class LoomGroup(TyperGroup):
    """The error boundary: a ``LoomError`` (or an OS error) from any command becomes one red
    ``error [code]: message`` line on stderr and exit code 1, never a traceback."""

    def invoke(self, ctx: Any) -> Any:  # ctx: the click Context that typer vendors
        try:
            return super().invoke(ctx)
        except LoomError as exc:
            report_error(exc.code, exc.message)
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # `loomdb ... | head`: click exits quietly
                raise
            report_error("io_error", str(exc))


def report_error(code: str, message: str) -> NoReturn:
    """Print the one-line error and exit with status 1."""
    Console(stderr=True, soft_wrap=True).print(Text(f"error [{code}]: {message}", style="red"))
    raise typer.Exit(1)


def stdout() -> Console:
    """A console on the current stdout (made per call, so test runners can capture it)."""
    return Console()


def store_path(store: str | Path | None, *, create: bool = False) -> str | Path:
    """The store: a URL (``postgresql://...``) as given, for ``loomdb.open`` to read (a path
    would fold its ``//``); else the directory ``--store`` or the configured default,
    ``NotFound`` if it does not exist (unless ``create``)."""
    target = store if store is not None else default_store_path()
    if isinstance(target, str) and "://" in target:
        return target
    path = Path(target)
    if not create and not path.is_dir():
        raise NotFound(f"no loomdb store at {path}; create one with: loomdb init {path}")
    return path


@contextmanager
def open_store(
    store: str | Path | None, tenant: str, *, write: bool = False, create: bool = False
) -> Iterator[loomdb.Database]:
    """The tenant's handle on the store; closed (indexes saved) when the block ends.

    Reads open the store read-only, so they work while another process writes to it. No
    background weaver: a command runs its enrichment itself (``ingest --wait``, ``weaver
    --run``) or leaves it queued for the next process.
    """
    db = loomdb.open(store_path(store, create=create), read_only=not write, weaver=False)
    try:
        yield db if tenant == "default" else db.tenant(tenant)
    finally:
        db.close()


def _parse_object(text: str | None, what: str, error: type[InvalidInput]) -> JSONObject:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise error(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def parse_filter_json(text: str | None) -> JSONObject | None:
    """``--where``: a JSON filter object (see ``loomdb.filters``), or None."""
    return None if text is None else _parse_object(text, "--where", InvalidFilter)


def parse_props_json(text: str | None) -> JSONObject:
    """``--props``: a JSON object, ``{}`` when absent."""
    return _parse_object(text, "--props", InvalidInput)


# -- output --------------------------------------------------------------------------------


def cell(value: object, style: str = "") -> Text:
    """A table cell holding user data as plain text (brackets in it are not rich markup)."""
    return Text(str(value), style=style)


def shorten(text: str | None, width: int = 80) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def print_json(value: object) -> None:
    """Machine output: plain JSON on stdout, no colours or wrapping."""
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def node_dict(node: Node) -> dict[str, object]:
    return dataclasses.asdict(node)


def hit_dict(hit: Hit) -> dict[str, object]:
    citation = None if hit.citation is None else dataclasses.asdict(hit.citation)
    return {"id": hit.id, "score": hit.score, "scores": hit.scores, "citation": citation,
            "node": node_dict(hit.node)}


def edge_dict(edge: Edge) -> dict[str, object]:
    return dataclasses.asdict(edge)


def _table(title: str, columns: Sequence[tuple[str, str, list[str]]], texts: list[str | None],
           width: int) -> Table:
    """A table whose columns keep their values on one line and whose last column, ``text``,
    is cut with an ellipsis to the room left in ``width`` terminal columns."""
    table = Table(title=escape(title), title_justify="left")
    used = 4  # the outer borders and the text column's padding
    for header, style, values in columns:
        column_width = max([len(header), *(len(v) for v in values)])
        table.add_column(header, style=style, no_wrap=True, overflow="fold")
        used += column_width + 3
    table.add_column("text")
    room = max(20, width - used)
    rows = zip(*(values for _, _, values in columns), strict=True)
    for row, text in zip(rows, texts, strict=True):
        table.add_row(*(cell(value) for value in row), cell(shorten(text, room)))
    return table


def hits_table(title: str, hits: Sequence[Hit], width: int) -> Table:
    """Ranked hits: rank, score, id, kind and the start of the text."""
    columns = [("#", "dim", [str(rank) for rank in range(1, len(hits) + 1)]),
               ("score", "", [f"{h.score:.4g}" for h in hits]),
               ("id", "cyan", [h.id for h in hits]),
               ("kind", "magenta", [h.node.kind for h in hits])]
    return _table(title, columns, [h.node.text for h in hits], width)


def edges_table(title: str, rows: Sequence[tuple[str, Edge, Node | None]], width: int) -> Table:
    """Edges seen from one node: (arrow, edge, the node at the other end if known)."""
    others = [(e.dst if arrow == "->" else e.src, node) for arrow, e, node in rows]
    columns = [("dir", "dim", [arrow for arrow, _, _ in rows]),
               ("type", "green", [e.type for _, e, _ in rows]),
               ("node", "cyan", [other_id for other_id, _ in others]),
               ("kind", "magenta", [node.kind if node else "" for _, node in others]),
               ("weight", "", [f"{e.weight:g}" for _, e, _ in rows])]
    return _table(title, columns, [node.text if node else None for _, node in others], width)
