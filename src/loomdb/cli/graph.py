"""Graph commands: neighbors, path."""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from loomdb import Edge, NotFound, Path

from .common import (
    DirectionChoice,
    JsonOpt,
    StoreOpt,
    TenantOpt,
    cell,
    edge_dict,
    edges_table,
    node_dict,
    open_store,
    parse_filter_json,
    print_json,
    shorten,
    stdout,
)

__all__ = ["neighbors", "path"]

TypesOpt = Annotated[list[str] | None, typer.Option(
    "--type", show_default=False, help="Follow only edges of this type (repeatable).")]
DirectionOpt = Annotated[DirectionChoice, typer.Option(
    help="out: edges from the node; in: edges to it; both: either way.")]


def neighbors(
    node_id: Annotated[str, typer.Argument(metavar="ID", help="Id of the node.")],
    types: TypesOpt = None,
    direction: DirectionOpt = DirectionChoice.out,
    where: Annotated[str | None, typer.Option(
        help="Keep only neighbours matching this JSON filter.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many neighbours.")] = 100,
    store: StoreOpt = None,
    tenant: TenantOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """List the nodes one edge away from ID, strongest edge first.

    Example: loomdb neighbors marie-curie --direction both --type mentions
    """
    with open_store(store, tenant) as db:
        found = db.neighbors(node_id, types=types or None, direction=direction.value,
                             where=parse_filter_json(where), limit=limit)
    if as_json:
        print_json([{"node": node_dict(n), "edge": edge_dict(e)} for n, e in found])
        return
    rows = [("->" if e.src == node_id else "<-", e, n) for n, e in found]
    console = stdout()
    console.print(edges_table(f"{len(rows)} neighbour(s) of {node_id}", rows, console.width))


def path(
    start: Annotated[str, typer.Argument(help="Id of the node to start from.")],
    goal: Annotated[str, typer.Argument(help="Id of the node to reach.")],
    weighted: Annotated[bool, typer.Option(
        "--weighted", help="Least total edge weight instead of fewest edges.")] = False,
    max_depth: Annotated[int, typer.Option(help="Give up beyond this many edges.")] = 6,
    types: TypesOpt = None,
    direction: DirectionOpt = DirectionChoice.out,
    store: StoreOpt = None,
    tenant: TenantOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Find the shortest path from START to GOAL; exits with status 1 when there is none.

    Example: loomdb path marie-curie niels-bohr --direction both --max-depth 8
    """
    with open_store(store, tenant) as db:
        found = db.shortest_path(start, goal, weighted=weighted, max_depth=max_depth,
                                 types=types or None, direction=direction.value)
    if found is None:
        raise NotFound(f"no path from {start!r} to {goal!r} within {max_depth} edge(s) "
                       f"(direction {direction.value})")
    if as_json:
        print_json({"nodes": [node_dict(n) for n in found.nodes],
                    "edges": [edge_dict(e) for e in found.edges], "cost": found.cost})
        return
    console = stdout()
    console.print(path_line(found))
    console.print(path_table(found))


def _step(edge: Edge, here: str) -> Text:
    """`-[type]->` when the walk follows the edge, `<-[type]-` when it goes against it."""
    if edge.src == here:
        return Text.assemble(" -[", (edge.type, "green"), "]-> ")
    return Text.assemble(" <-[", (edge.type, "green"), "]- ")


def path_line(found: Path) -> Text:
    """The path on one line: ``a -[type]-> b <-[type]- c``."""
    line = Text(found.nodes[0].id, style="cyan")
    for edge, (here, there) in zip(found.edges, pairwise(found.nodes), strict=True):
        line.append_text(_step(edge, here.id))
        line.append(there.id, style="cyan")
    return line


def path_table(found: Path) -> Table:
    """One row per node of the path, with the edge that reached it."""
    table = Table(title=f"{len(found)} edge(s), cost {found.cost:g}", title_justify="left")
    table.add_column("#", justify="right", style="dim")
    table.add_column("via")
    table.add_column("node", style="cyan", overflow="fold")
    table.add_column("kind", style="magenta")
    table.add_column("text")
    vias = [Text("")] + [_step(e, here.id) for e, (here, _) in
                         zip(found.edges, pairwise(found.nodes), strict=True)]
    for step, (node, via) in enumerate(zip(found.nodes, vias, strict=True)):
        table.add_row(str(step), via, cell(node.id), cell(node.kind),
                      cell(shorten(node.text, 60)))
    return table
