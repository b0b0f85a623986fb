"""What every command shares: the --store/--tenant/--json options, opening the store, parsing
JSON arguments, the error boundary and the rich/JSON output helpers."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

import loomdb
from loomdb.config import default_store_path
from loomdb.errors import InvalidFilter, InvalidInput, LoomError, NotFound
from loomdb.model import Edge, Hit, Node

__all__ = [
    "DirectionChoice",
    "JsonOpt",
    "LoomGroup",
    "StoreOpt",
    "TenantOpt",
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
]

StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", "-s", show_default=False,
                 help="Store directory (default: $LOOMDB_STORE, else ./loomdb-store)."),
]
TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant to read and write.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


class DirectionChoice(str, Enum):
    """Which edges a graph command follows, relative to the node."""

    out = "out"
    in_ = "in"
    both = "both"


class LoomGroup(TyperGroup):
    """The error boundary: a ``LoomError`` (or an OS error) from any command becomes one red
    ``error [code]: message`` line on stderr and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LoomError as exc:
            report_error(exc.code, exc.message)
        except OSError as exc:
            report_error("io_error", str(exc))


def report_error(code: str, message: str) -> None:
    """Print the one-line error and exit with status 1."""
    Console(stderr=True, soft_wrap=True).print(Text(f"error [{code}]: {message}", style="red"))
    raise typer.Exit(1)


def stdout() -> Console:
    """A console on the current stdout (made per call, so test runners can capture it)."""
    return Console()


@contextmanager
def open_store(
    store: Path | None, tenant: str, *, write: bool = False, create: bool = False
) -> Iterator[loomdb.Database]:
    """The tenant's handle on the store; closed (indexes saved) when the block ends.

    Reads open the store read-only, so they work while another process writes to it.
    """
    path = store if store is not None else default_store_path()
    if not create and not path.is_dir():
        raise NotFound(f"no loomdb store at {path}; create one with: loomdb init {path}")
    db = loomdb.open(path, read_only=not write)
    try:
        yield db if tenant == "default" else db.tenant(tenant)
    finally:
        db.close()


def _parse_object(text: str | None, what: str, error: type[InvalidInput]) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise error(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def parse_filter_json(text: str | None) -> dict[str, Any] | None:
    """``--where``: a JSON filter object (see ``loomdb.query.filters``), or None."""
    return None if text is None else _parse_object(text, "--where", InvalidFilter)


def parse_props_json(text: str | None) -> dict[str, Any]:
    """``--props``: a JSON object, ``{}`` when absent."""
    return _parse_object(text, "--props", InvalidInput)


# -- output --------------------------------------------------------------------------------


def shorten(text: str | None, width: int = 80) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def print_json(value: Any) -> None:
    """Machine output: plain JSON on stdout, no colours or wrapping."""
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def node_dict(node: Node) -> dict[str, Any]:
    return dataclasses.asdict(node)


def hit_dict(hit: Hit) -> dict[str, Any]:
    citation = None if hit.citation is None else dataclasses.asdict(hit.citation)
    return {"id": hit.id, "score": hit.score, "scores": hit.scores, "citation": citation,
            "node": node_dict(hit.node)}


def edge_dict(edge: Edge) -> dict[str, Any]:
    return dataclasses.asdict(edge)


def hits_table(title: str, hits: Sequence[Hit]) -> Table:
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("score", justify="right")
    table.add_column("id", style="cyan", overflow="fold")
    table.add_column("kind", style="magenta")
    table.add_column("text")
    for rank, hit in enumerate(hits, 1):
        table.add_row(str(rank), f"{hit.score:.3f}", hit.id, hit.node.kind,
                      shorten(hit.node.text, 70))
    return table


def edges_table(title: str, rows: Sequence[tuple[str, Edge, Node | None]]) -> Table:
    """Edges seen from one node: (arrow, edge, the node at the other end if known)."""
    table = Table(title=title, title_justify="left")
    table.add_column("dir", style="dim")
    table.add_column("type", style="green")
    table.add_column("node", style="cyan", overflow="fold")
    table.add_column("kind", style="magenta")
    table.add_column("weight", justify="right")
    table.add_column("text")
    for arrow, edge, other in rows:
        other_id = edge.dst if arrow == "->" else edge.src
        table.add_row(arrow, edge.type, other_id, other.kind if other else "",
                      f"{edge.weight:g}", shorten(other.text if other else None, 50))
    return table

