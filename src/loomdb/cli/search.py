"""Search command: by meaning (MiniLM vectors), by words (BM25), or both side by side."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape

from loomdb import Hit, MiniLMEmbedder

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

__all__ = ["search"]


class SearchMode(StrEnum):
    vector = "vector"
    text = "text"
    both = "both"


def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("--k", "-k", help="How many results per ranking.")] = 10,
    mode: Annotated[SearchMode, typer.Option(
        help="vector: MiniLM similarity; text: BM25 words; both: the two rankings.")] = (
        SearchMode.vector),
    where: Annotated[str | None, typer.Option(
        help='Filter as JSON, e.g. \'{"kind": "chunk", "props.lang": "en"}\'.')] = None,
    kind: Annotated[str | None, typer.Option(help="Only nodes of this kind.")] = None,
    space: Annotated[str, typer.Option(help="Vector space searched in vector mode.")] = "text",
    store: StoreOpt = None,
    tenant: TenantOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Search nodes by meaning, by words (BM25), or both, with an optional filter.

    Example: loomdb search "who discovered radium" --k 5 --mode both --where '{"kind": "chunk"}'
    """
    rankings: dict[str, list[Hit]] = {}
    filters = parse_filter_json(where)
    with open_store(store, tenant) as db:
        if mode is not SearchMode.text:
            db.space(space)  # a missing space fails before the model loads
            vector = MiniLMEmbedder().embed([query])[0]
            rankings["vector"] = db.vector_search(vector, k, space=space, where=filters,
                                                  kind=kind, model=MiniLMEmbedder.model_id)
        if mode is not SearchMode.vector:
            rankings["text"] = db.text_search(query, k, where=filters, kind=kind)
    if as_json:
        print_json({name: [hit_dict(h) for h in hits] for name, hits in rankings.items()})
        return
    console = stdout()
    titles = {"vector": "by meaning (MiniLM, cosine)", "text": "by words (BM25)"}
    for name, hits in rankings.items():
        if hits:
            console.print(hits_table(f"{titles[name]} — {query}", hits, console.width))
        else:
            console.print(f"[yellow]no {name} results[/] for {escape(query)!s}")
