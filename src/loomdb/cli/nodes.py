"""Node and edge commands: add, link, get."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

import loomdb
from loomdb import InvalidInput, MiniLMEmbedder, NotFound

from .common import (
    JsonOpt,
    StoreOpt,
    TenantOpt,
    cell,
    edge_dict,
    edges_table,
    node_dict,
    open_store,
    parse_props_json,
    print_json,
    stdout,
    store_path,
)

__all__ = ["add", "get", "link"]

TIME_FIELDS = ("created", "updated", "last_accessed")


def add(
    node_id: Annotated[str, typer.Argument(metavar="ID", help="Id of the new node.")],
    kind: Annotated[str, typer.Option(help="document, chunk, entity, concept... or your own.")] = (
        "concept"),
    text: Annotated[str | None, typer.Option(help="The node's text (indexed for BM25).")] = None,
    props: Annotated[str | None, typer.Option(help="Properties as a JSON object.")] = None,
    source: Annotated[str | None, typer.Option(help="Where the node comes from.")] = None,
    category: Annotated[str | None, typer.Option(help="A category label.")] = None,
    embed: Annotated[bool, typer.Option(
        "--embed", help="Embed --text with MiniLM into --space (created if absent).")] = False,
    space: Annotated[str, typer.Option(help="Vector space for --embed.")] = "text",
    store: StoreOpt = None,
    tenant: TenantOpt = "default",
) -> None:
    """Add a node; with --embed, also its MiniLM vector of --text.

    Example: loomdb add marie-curie --kind entity --text "Marie Curie, physicist" --embed
    """
    node = loomdb.Node(node_id, kind, text, parse_props_json(props), source, category)
    path = store_path(store)
    vector = _embed_text(text) if embed else None  # before the write lock: loading takes time
    with open_store(path, tenant, write=True) as db:
        if vector is None:
            db.add_nodes([node])
        else:
            _ensure_minilm_space(db, space)
            with db.transaction():
                db.add_nodes([node])
                db.set_vector(node_id, vector, space=space, model=MiniLMEmbedder.model_id)
    done = f" and its vector in space [cyan]{escape(space)}[/]" if embed else ""
    stdout().print(f"Added {escape(kind)} [cyan]{escape(node_id)}[/]{done}")


def _embed_text(text: str | None) -> list[float]:
    if not text:
        raise InvalidInput("--embed needs --text to embed")
    vector: list[float] = MiniLMEmbedder().embed([text])[0].tolist()
    return vector


def _ensure_minilm_space(db: loomdb.Database, space: str) -> None:
    try:
        db.space(space)
    except NotFound:
        db.create_space(space, MiniLMEmbedder.dim, model=MiniLMEmbedder.model_id)


def link(
    src: Annotated[str, typer.Argument(help="Id of the node the edge starts from.")],
    dst: Annotated[str, typer.Argument(help="Id of the node the edge points to.")],
    edge_type: Annotated[str, typer.Option("--type", help="Edge type.")] = "related",
    weight: Annotated[float, typer.Option(help="Edge weight (the cost in weighted paths).")] = (
        1.0),
    props: Annotated[str | None, typer.Option(help="Properties as a JSON object.")] = None,
    store: StoreOpt = None,
    tenant: TenantOpt = "default",
) -> None:
    """Add an edge SRC -> DST (both nodes must exist).

    Example: loomdb link chunk-12 marie-curie --type mentions
    """
    with open_store(store, tenant, write=True) as db:
        edge = db.add_edge(src, dst, edge_type, weight, props=parse_props_json(props))
    stdout().print(f"Linked [cyan]{escape(edge.src)}[/] -[green]{escape(edge.type)}[/]-> "
                   f"[cyan]{escape(edge.dst)}[/]")


def get(
    node_id: Annotated[str, typer.Argument(metavar="ID", help="Id of the node.")],
    limit: Annotated[int, typer.Option(help="At most this many edges each way.")] = 100,
    store: StoreOpt = None,
    tenant: TenantOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Show a node with its outgoing and incoming edges.

    Example: loomdb get marie-curie --json
    """
    with open_store(store, tenant) as db:
        node = db.get_node(node_id)
        out_edges = db.get_edges(src=node_id, limit=limit)
        in_edges = db.get_edges(dst=node_id, limit=limit)
        others = db.get_nodes([e.dst for e in out_edges] + [e.src for e in in_edges])
    if as_json:
        print_json({"node": node_dict(node), "out": [edge_dict(e) for e in out_edges],
                    "in": [edge_dict(e) for e in in_edges]})
        return
    console = stdout()
    console.print(_node_table(node))
    rows = [("->", e, others.get(e.dst)) for e in out_edges]
    rows += [("<-", e, others.get(e.src)) for e in in_edges]
    console.print(edges_table(f"edges ({len(out_edges)} out, {len(in_edges)} in)", rows,
                              console.width))


def _node_table(node: loomdb.Node) -> Table:
    table = Table(title=f"node {escape(node.id)}", title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for field, value in node_dict(node).items():
        if value not in (None, {}, "") and field != "id":
            table.add_row(field, cell(_shown(field, value)))
    return table


def _shown(field: str, value: object) -> str:
    """A node field for people: JSON props, ISO times, text clipped to 500 characters."""
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if field in TIME_FIELDS and isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=UTC).isoformat(timespec="seconds")
    text = str(value)
    return text if len(text) <= 500 else text[:499] + "…"
