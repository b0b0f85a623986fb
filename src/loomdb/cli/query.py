"""The converged query command: query (with --explain)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.text import Text

from loomdb import QueryArguments, query_strategies

from .common import (
    JsonOpt,
    StoreOpt,
    TenantOpt,
    hit_dict,
    hits_table,
    open_store,
    parse_filter_json,
    print_json,
    stdout,
)

__all__ = ["query"]


def query(
    text: Annotated[str, typer.Argument(help="What to look for (meaning and words).")],
    k: Annotated[int, typer.Option("--k", "-k", help="How many results.")] = 10,
    where: Annotated[str | None, typer.Option(
        help='Filter as JSON, e.g. \'{"props.lang": "en"}\'.')] = None,
    kind: Annotated[str | None, typer.Option(help="Only nodes of this kind.")] = None,
    near: Annotated[list[str] | None, typer.Option(
        help="Anchor node id for the graph part (repeatable).")] = None,
    hops: Annotated[int, typer.Option(help="Edges from the anchors.")] = 1,
    user: Annotated[str | None, typer.Option(help="Personalise for this user.")] = None,
    strategy: Annotated[str | None, typer.Option(
        help=f"Force a strategy: {', '.join(query_strategies(forcible=True))}.")] = None,
    multi_hop: Annotated[bool, typer.Option(
        "--multi-hop", help="Add passages that share entities with the top hits.")] = False,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Print the plan: strategy, alternatives, step times.")] = False,
    store: StoreOpt = None, tenant: TenantOpt = "default", as_json: JsonOpt = False,
) -> None:
    """Answer a converged query: filter, graph neighbourhood, meaning and words, fused.

    Example: loomdb query "who isolated radium" --kind chunk --near "entity:PERSON:marie curie"
    """
    arguments: QueryArguments = {
        "text": text, "k": k, "where": parse_filter_json(where), "kind": kind,
        "near": near or None, "hops": hops, "user": user, "strategy": strategy,
        "multi_hop": multi_hop}
    with open_store(store, tenant) as db:
        hits = db.query(**arguments)
        plan = db.explain(**arguments, execute=True) if explain else None
    if as_json:
        payload: dict[str, object] = {"hits": [hit_dict(h) for h in hits]}
        if plan is not None:
            payload["plan"] = dataclasses.asdict(plan)
        print_json(payload)
        return
    console = stdout()
    console.print(hits_table(f"query — {text}", hits, console.width))
    for hit in hits:
        if hit.citation is not None:
            c = hit.citation
            console.print(Text(f"  {hit.id}: {c.document} p.{c.page} [{c.start}:{c.end}]",
                               style="dim"))
    if plan is not None:
        console.print(Text(plan.render()))
